"""Prediction API benchmark: gunicorn on 127.0.0.1 against calling the model in process.

For the demo's overdue random forest and a small logistic regression it prints: p50/p99 of
single-row requests over one keep-alive connection, rows/s for 1,000-row batches, the same
for `model.predict` in process on the same rows (and predict + predict_proba, which the API
computes for classifiers), the ratios, and the first request after a deployment against a
warm one.

    .venv/bin/python bench/bench_predict.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_predict \\
    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/bench_predict.py

Options: --quick, --threads N (gunicorn gthread threads per worker, default 4 as in bin/run;
1 = sync workers, which do not keep connections alive).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import statistics
import subprocess
import sys
import time

import numpy as np
from common import (  # noqa: E402
    ROOT,
    free_port,
    percentile,
    remove,
    save,
    scratch_django,
    wait_until_up,
)


def _models():
    """(name, version, joblib bytes, features, rows): the demo forest and a small LR."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from demo import training as demo

    rng = np.random.default_rng(demo.RNG_SEED)
    data = demo.overdue_dataset(rng)
    forest = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=42, n_jobs=1)
    forest.fit(data["X"], data["y"])
    churn = demo.churn_dataset(rng)
    logreg = LogisticRegression(max_iter=500).fit(churn["X"], churn["y"])
    out = []
    overdue_features = demo.catalogue()[0].features
    churn_features = demo.catalogue()[1].features
    for name, model, features, X in (("overdue_prediction", forest, overdue_features,
                                      data["X"]),
                                     ("churn_logreg", logreg, churn_features, churn["X"])):
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        out.append((name, buffer.getvalue(), features, X, model))
    return out


def _register(name, payload, features, actor, admin, version="1.0.0"):
    from governance import services as governance
    from registry import services, store

    if version == "1.0.0":
        services.model_create(name=name, task_type="classification", owner=actor, actor=actor)
    incoming = [store.ingest_stream(io.BytesIO(payload), name="model.joblib", role="model")]
    row = services.version_register(
        model_name=name, version=version, framework="sklearn",
        metadata={"features": features, "metrics": {"accuracy": 0.8}}, files=incoming,
        actor=actor)
    run = governance.validation_request_now(row)
    assert run.status == "passed", run.summary
    for stage in ("staging", "production"):
        governance.version_force_stage(version=row, to_stage=stage, actor=admin,
                                       reason="benchmark")
    return row


class Client:
    def __init__(self, port, token):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}",
                        "Content-Type": "application/json"}
        self.reconnects = 0

    def predict(self, name, body: bytes) -> dict:
        try:
            self.connection.request("POST", f"/api/v1/models/{name}/predict/", body=body,
                                    headers=self.headers)
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.reconnects += 1  # the server closed the connection: count it, go on
            self.connection.close()
            self.connection.request("POST", f"/api/v1/models/{name}/predict/", body=body,
                                    headers=self.headers)
            response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:300]!r}")
        return json.loads(data)


def _time(call, n):
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return timings


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=4,
                        help="gunicorn threads per worker (gthread, keep-alive); 1 = sync "
                        "workers, which close the connection after each request")
    args = parser.parse_args()
    singles, batches = (300, 10) if args.quick else (2000, 50)

    scratch, env = scratch_django("bench-predict")
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from core import roles
    from predictions import services as predictions
    from registry import load_model

    roles.ensure_groups()
    User = get_user_model()
    people = {}
    for name, role in (("dana", roles.DATA_SCIENTIST), ("root", roles.ADMIN),
                       ("svc", roles.SERVICE)):
        people[name] = User.objects.create_user(name)
        people[name].groups.add(Group.objects.get(name=role))
    token = predictions.api_token_create(user=people["svc"], name="bench",
                                         actor=people["root"])[1]
    models = _models()
    for name, payload, features, _X, _model in models:
        _register(name, payload, features, people["dana"], people["root"])
    connection.close()

    port = free_port()
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2",
               GUNICORN_THREADS=str(args.threads), GUNICORN_ACCESSLOG="",
               PREDICTION_RATE_LIMIT_PER_HOUR="100000000", PREDICTION_PRELOAD="true")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py",
                               "config.wsgi:application"], cwd=ROOT, env=env)
    results = {}
    try:
        wait_until_up(port, settle=2)  # let both workers preload
        client = Client(port, token)
        print(f"database: {connection.vendor}; gunicorn: 2 workers x {args.threads} thread(s), "
              f"keep-alive; python {sys.version.split()[0]}")
        for name, _payload, _features, X, _model in models:
            results[name] = _measure(client, name, X, load_model(name), singles, batches)
        results["first_after_deployment"] = _after_deployment(client, models[1], people)
        print(f"(the server closed the keep-alive connection {client.reconnects} time(s))")
    finally:
        server.terminate()
        server.wait(timeout=30)
        remove(scratch)
    save("predict", connection.vendor, results)


def _measure(client, name, X, loaded, singles, batches):
    row = X[:1]
    body_single = json.dumps({"inputs": row.tolist()}).encode()
    batch = X[:1000]
    body_batch = json.dumps({"inputs": batch.tolist()}).encode()
    for _ in range(100):
        client.predict(name, body_single)
    api_single = _time(lambda: client.predict(name, body_single), singles)
    api_batch = _time(lambda: client.predict(name, body_batch), batches)
    estimator = loaded.estimator
    local_single = _time(lambda: estimator.predict(row), singles)
    local_both = _time(lambda: (estimator.predict(row), estimator.predict_proba(row)), singles)
    local_batch = _time(lambda: estimator.predict(batch), batches)
    local_batch_both = _time(lambda: (estimator.predict(batch), estimator.predict_proba(batch)),
                             batches)
    p50 = {k: percentile(v, 50) * 1000 for k, v in (
        ("api", api_single), ("local", local_single), ("local_both", local_both))}
    p99 = {k: percentile(v, 99) * 1000 for k, v in (("api", api_single), ("local", local_single))}
    rows_s = {k: 1000 / statistics.median(v) for k, v in (
        ("api", api_batch), ("local", local_batch), ("local_both", local_batch_both))}
    print(f"\n{name} ({type(estimator).__name__})")
    print(f"  single row, API          p50 {p50['api']:7.3f} ms  p99 {p99['api']:7.3f} ms")
    print(f"  single row, in process   p50 {p50['local']:7.3f} ms  p99 {p99['local']:7.3f} ms"
          f"   (predict + predict_proba: p50 {p50['local_both']:.3f} ms)")
    print(f"  → API p50 − in-process p50 = {p50['api'] - p50['local']:.3f} ms "
          f"(ratio {p50['api'] / p50['local']:.1f}×)")
    print(f"  1,000-row batch, API         {rows_s['api']:12,.0f} rows/s")
    print(f"  1,000-row batch, in process  {rows_s['local']:12,.0f} rows/s predict; "
          f"{rows_s['local_both']:,.0f} rows/s predict + predict_proba")
    print(f"  → API / in-process rows/s = {rows_s['api'] / rows_s['local']:.2f} "
          f"({rows_s['api'] / rows_s['local_both']:.2f} against predict + predict_proba)")
    return {"single_p50_ms": round(p50["api"], 3), "single_p99_ms": round(p99["api"], 3),
            "local_p50_ms": round(p50["local"], 3),
            "local_both_p50_ms": round(p50["local_both"], 3),
            "batch_rows_per_s": round(rows_s["api"]),
            "local_batch_rows_per_s": round(rows_s["local"]),
            "local_both_batch_rows_per_s": round(rows_s["local_both"])}


def _after_deployment(client, spec, people, deployments=5):
    """Deploy new versions of the small model one after another; time the first request each
    one answers against warm requests (median over the deployments)."""
    from django.db import connection

    name, payload, features, data, _model = spec
    body = json.dumps({"inputs": data[:1].tolist()}).encode()
    warm = _time(lambda: client.predict(name, body), 200)
    firsts, noticed = [], []
    for minor in range(1, deployments + 1):
        version = f"1.{minor}.0"
        _register(name, payload, features, people["dana"], people["root"], version=version)
        connection.close()
        deployed = time.perf_counter()
        while True:
            started = time.perf_counter()
            answer = client.predict(name, body)
            elapsed = time.perf_counter() - started
            if answer["version"] == version:
                break
        noticed.append(time.perf_counter() - deployed)
        firsts.append(elapsed * 1000)
    warm_p50 = percentile(warm, 50) * 1000
    first = statistics.median(firsts)
    print(f"\nfirst request answered by a newly deployed version ({deployments} deployments): "
          f"median {first:.3f} ms, worst {max(firsts):.3f} ms (warm p50 {warm_p50:.3f} ms, "
          f"ratio {first / warm_p50:.2f}); noticed after {statistics.median(noticed):.2f} s "
          f"(median), {max(noticed):.2f} s (worst)")
    return {"first_ms": [round(f, 3) for f in firsts], "warm_p50_ms": round(warm_p50, 3),
            "noticed_after_s": [round(n, 3) for n in noticed]}


if __name__ == "__main__":
    main()
