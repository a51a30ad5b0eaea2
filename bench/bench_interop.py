"""Interoperability benchmark: the Open Inference Protocol in binary against JSON, and MLflow's
/invocations against our own predict endpoint, on the same model under gunicorn.

A logistic regression over 20 features (cheap to evaluate, so what differs is the protocol:
parsing, checking, serialising). It prints:

- OIP /v2/models/<name>/infer, a 1,000 x 20 FP32 batch, all outputs (predict and
  predict_proba): the binary tensor extension both ways (tritonclient's default) against
  JSON both ways, p50 and rows/s;
- MLflow's POST /mlflow/<name>/invocations (`dataframe_split`, as `DataFrame.to_json`
  writes it) against POST /api/v1/models/<name>/predict/ (`inputs`), for one row and for
  the 1,000-row batch, p50.

Request bodies are built once, before timing (tritonclient's own `generate_request_body`
for OIP), and sent over one keep-alive connection with http.client, so the client's own
encoding is not measured.

    .venv/bin/python bench/bench_interop.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_interop \\
    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/bench_interop.py

Options: --quick (fewer repetitions).
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

NAME = "interop_logreg"
FEATURES = 20
BATCH = 1000


def _model():
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = rng.normal(size=(5000, FEATURES)).astype(np.float32)
    y = (X[:, :3].sum(axis=1) > 0).astype(int)
    model = LogisticRegression(max_iter=500).fit(X, y)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue(), X


def _register(payload, actor, admin):
    from governance import services as governance
    from registry import services, store

    services.model_create(name=NAME, task_type="classification", owner=actor, actor=actor)
    features = [f"f{i:02d}" for i in range(FEATURES)]
    incoming = [store.ingest_stream(io.BytesIO(payload), name="model.joblib", role="model")]
    row = services.version_register(
        model_name=NAME, version="1.0.0", framework="sklearn",
        metadata={"features": features, "metrics": {"accuracy": 0.8}}, files=incoming,
        actor=actor)
    run = governance.validation_request_now(row)
    assert run.status == "passed", run.summary
    for stage in ("staging", "production"):
        governance.version_force_stage(version=row, to_stage=stage, actor=admin,
                                       reason="benchmark")
    return features


class Client:
    def __init__(self, port, token):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.auth = {"Authorization": f"Bearer {token}"}
        self.reconnects = 0

    def post(self, path, body: bytes, headers: dict) -> bytes:
        headers = {**self.auth, **headers}
        try:
            self.connection.request("POST", path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.reconnects += 1  # the server closed the keep-alive connection: count, go on
            self.connection.close()
            self.connection.request("POST", path, body=body, headers=headers)
            response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}: {data[:300]!r}")
        return data


def _time(call, n):
    for _ in range(min(20, n)):  # warm-up
        call()
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return timings


def _oip_bodies(rows: np.ndarray):
    import tritonclient.http as triton

    def request(binary: bool):
        tensor = triton.InferInput("input-0", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        outputs = [triton.InferRequestedOutput(name, binary_data=binary)
                   for name in ("predict", "predict_proba")]
        body, json_size = triton.InferenceServerClient.generate_request_body(
            [tensor], outputs=outputs)
        headers = {"Content-Type": "application/octet-stream" if binary
                   else "application/json"}
        if json_size is not None:
            headers["Inference-Header-Content-Length"] = str(json_size)
        return body, headers

    return request(True), request(False)


def _check_oip(raw_binary: bytes, raw_json: bytes, length: int | None, model, rows):
    import tritonclient.http as triton

    binary = triton.InferenceServerClient.parse_response_body(raw_binary,
                                                              header_length=length)
    plain = json.loads(raw_json)
    expected = model.predict(rows)
    assert (binary.as_numpy("predict") == expected).all()
    assert plain["outputs"][0]["data"] == expected.tolist()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    singles, batches = (200, 20) if args.quick else (1000, 100)

    scratch, env = scratch_django("bench-interop")
    import joblib
    import pandas as pd
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from core import roles
    from predictions import services as predictions

    roles.ensure_groups()
    User = get_user_model()
    people = {}
    for name, role in (("dana", roles.DATA_SCIENTIST), ("root", roles.ADMIN),
                       ("svc", roles.SERVICE)):
        people[name] = User.objects.create_user(name)
        people[name].groups.add(Group.objects.get(name=role))
    token = predictions.api_token_create(user=people["svc"], name="bench",
                                         actor=people["root"])[1]
    payload, X = _model()
    names = _register(payload, people["dana"], people["root"])
    model = joblib.load(io.BytesIO(payload))
    connection.close()

    port = free_port()
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2", GUNICORN_THREADS="4",
               GUNICORN_ACCESSLOG="", PREDICTION_RATE_LIMIT_PER_HOUR="100000000",
               PREDICTION_PRELOAD="true")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py",
                               "config.wsgi:application"], cwd=ROOT, env=env)
    results = {}
    try:
        wait_until_up(port, settle=2)
        client = Client(port, token)
        batch, single = X[:BATCH], X[:1]
        print(f"database: {connection.vendor}; gunicorn: 2 workers x 4 threads, keep-alive; "
              f"python {sys.version.split()[0]}; model: LogisticRegression, {FEATURES} features")

        # --- OIP: binary against JSON -------------------------------------------------------
        infer = f"/v2/models/{NAME}/infer"
        (binary_body, binary_headers), (json_body, json_headers) = _oip_bodies(batch)
        length = None
        client.connection.request("POST", infer, body=binary_body,
                                  headers={**client.auth, **binary_headers})
        response = client.connection.getresponse()
        raw_binary = response.read()
        length = int(response.getheader("Inference-Header-Content-Length"))
        _check_oip(raw_binary, client.post(infer, json_body, json_headers), length, model,
                   batch)
        print(f"\nOIP infer, {BATCH} x {FEATURES} FP32, predict + predict_proba "
              f"(request {len(binary_body):,} B binary, {len(json_body):,} B JSON)")
        for label, body, headers in (("binary", binary_body, binary_headers),
                                     ("JSON", json_body, json_headers)):
            timings = _time(lambda b=body, h=headers: client.post(infer, b, h), batches)
            p50 = percentile(timings, 50) * 1000
            rows_s = BATCH / statistics.median(timings)
            results[f"oip_{label.lower()}"] = {"p50_ms": round(p50, 2),
                                              "rows_per_s": round(rows_s)}
            print(f"  {label:7} p50 {p50:8.2f} ms   {rows_s:12,.0f} rows/s")
        results["oip_json_over_binary"] = round(
            results["oip_json"]["p50_ms"] / results["oip_binary"]["p50_ms"], 2)
        print(f"  → JSON p50 / binary p50 = {results['oip_json_over_binary']:.2f}×")

        # --- MLflow's /invocations against our own predict ----------------------------------
        ours = f"/api/v1/models/{NAME}/predict/"
        mlflow = f"/mlflow/{NAME}/invocations"
        json_type = {"Content-Type": "application/json"}
        for label, rows, n in (("1 row", single, singles), (f"{BATCH} rows", batch, batches)):
            frame = pd.DataFrame(rows.astype(np.float64), columns=names)
            mlflow_body = ('{"dataframe_split": ' + frame.to_json(orient="split")
                           + "}").encode()
            ours_body = json.dumps({"inputs": rows.astype(np.float64).tolist()}).encode()
            a = json.loads(client.post(mlflow, mlflow_body, json_type))["predictions"]
            b = json.loads(client.post(ours, ours_body, json_type))["predictions"]
            assert a == b == model.predict(rows).tolist()
            # Alternated call by call, so a busy moment of the machine hits both alike.
            timings = {"mlflow": [], "ours": []}
            for index in range(n + 20):
                for which, path, body in (("mlflow", mlflow, mlflow_body),
                                          ("ours", ours, ours_body)):
                    started = time.perf_counter()
                    client.post(path, body, json_type)
                    if index >= 20:  # warm-up
                        timings[which].append(time.perf_counter() - started)
            p50 = {k: percentile(v, 50) * 1000 for k, v in timings.items()}
            results[f"mlflow_vs_ours_{label.replace(' ', '_')}"] = {
                k: round(v, 3) for k, v in p50.items()}
            print(f"\n{label}: MLflow /invocations (dataframe_split) p50 {p50['mlflow']:8.3f} ms"
                  f"   our /predict/ (inputs) p50 {p50['ours']:8.3f} ms"
                  f"   (ratio {p50['mlflow'] / p50['ours']:.2f}×; ours also sends "
                  "the probabilities back)")
        print(f"\n(the server closed the keep-alive connection {client.reconnects} time(s))")
    finally:
        server.terminate()
        server.wait(timeout=30)
        remove(scratch)
    save("interop", connection.vendor, results)


if __name__ == "__main__":
    main()
