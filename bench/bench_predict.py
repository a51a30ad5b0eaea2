"""Prediction API benchmark: gunicorn on 127.0.0.1 against calling the model in process.

For the demo's overdue random forest and a small logistic regression it prints: p50/p99 of
single-row requests over one keep-alive connection, rows/s for 1,000-row batches, the same
for `model.predict` in process on the same rows (and predict + predict_proba, which the API
computes for classifiers), the ratios, and the first request after a deployment against a
warm one.

    .venv/bin/python bench/bench_predict.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_predict \\
    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/bench_predict.py

Options: --quick, --threads N (gunicorn gthread threads per worker; 1 = sync workers, which
do not keep connections alive), --workers N, --part latency|scale|all.

`--part scale` (issue 14) serves a random forest of 100 trees on 20 numeric features and prints:
8 concurrent clients (processes, one connection each, single rows) against the in-process model
run by 2 processes (the 2-core limit): req/s, p50/p99 per client and the max/min share ratio;
one client's single-row p50 against in-process `predict`; 1,000-row batches through the Open
Inference Protocol (binary and JSON) against in-process rows/s; and the PSS of gunicorn's
master and workers (/proc/<pid>/smaps_rollup) serving 1 and then --models forests.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

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

    def post_raw(self, path, body: bytes, headers=None) -> bytes:
        headers = {**self.headers, **(headers or {})}
        for attempt in (1, 2):
            try:
                self.connection.request("POST", path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                if attempt == 2:
                    raise
                self.reconnects += 1  # the server closed the connection: count it, go on
                self.connection.close()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}: {data[:300]!r}")
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()  # a sync worker: the next request opens a new one
        return data


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
    parser.add_argument("--threads", type=int, default=None,
                        help="gunicorn threads per worker (gthread, keep-alive); 1 = sync "
                        "workers, which close the connection after each request; default: "
                        "config/gunicorn.py's")
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers; default: config/gunicorn.py's")
    parser.add_argument("--part", choices=("latency", "scale", "all"), default="all")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each concurrency run")
    parser.add_argument("--models", type=int, default=5,
                        help="forests served for the memory figure")
    args = parser.parse_args()
    singles, batches = (300, 10) if args.quick else (2000, 50)
    if args.quick:
        args.seconds = min(args.seconds, 4.0)

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
    if args.workers is not None:
        env["GUNICORN_WORKERS"] = str(args.workers)
    if args.threads is not None:
        env["GUNICORN_THREADS"] = str(args.threads)
    env.update(GUNICORN_ACCESSLOG="", PREDICTION_RATE_LIMIT_PER_HOUR="100000000",
               PREDICTION_PRELOAD="true")
    print(f"database: {connection.vendor}; gunicorn: {_server_shape(env)}; "
          f"python {sys.version.split()[0]}; load average {_load()}")
    results = {}
    try:
        if args.part in ("latency", "all"):
            models = _models()
            for name, payload, features, _X, _model in models:
                _register(name, payload, features, people["dana"], people["root"])
            connection.close()
            with _server(env) as port:
                client = Client(port, token)
                for name, _payload, _features, X, _model in models:
                    results[name] = _measure(client, name, X, load_model(name), singles,
                                             batches)
                results["first_after_deployment"] = _after_deployment(client, models[1],
                                                                      people)
                print(f"(the server closed the keep-alive connection {client.reconnects} "
                      "time(s))")
        if args.part in ("scale", "all"):
            results["scale"] = _scale(env, token, people, args, batches)
    finally:
        remove(scratch)
    save("predict" if args.part == "all" else f"predict-{args.part}", connection.vendor,
         results)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _server_shape(env) -> str:
    shape = {k: env.get(k, "default") for k in ("GUNICORN_WORKERS", "GUNICORN_THREADS",
                                                 "GUNICORN_KEEPALIVE")}
    return ", ".join(f"{k.lower()[9:]} {v}" for k, v in shape.items()) + " (config/gunicorn.py)"


class _server:
    """gunicorn with config/gunicorn.py on a free port, for a `with` block."""

    running: dict[int, int] = {}

    def __init__(self, env):
        self.env = dict(env)

    def __enter__(self) -> int:
        self.port = free_port()
        self.env["GUNICORN_BIND"] = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py",
             "config.wsgi:application"], cwd=ROOT, env=self.env)
        wait_until_up(self.port, settle=3)  # let the workers preload
        _server.running[self.port] = self.process.pid
        return self.port

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)

    @property
    def pid(self) -> int:
        return self.process.pid


# --- issue 14: concurrency, batches through the Open Inference Protocol, shared memory -------

FEATURES = 20


def _forest20():
    """A random forest of 100 trees on 20 numeric features (issue 14's yardstick)."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(14)
    X = rng.normal(size=(5000, FEATURES))
    y = ((X[:, 0] * X[:, 1] + X[:, 2:5].sum(axis=1) + rng.normal(0, 0.5, 5000)) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(X, y)
    buffer = io.BytesIO()
    joblib.dump(forest, buffer)
    return buffer.getvalue(), X, forest


def _in_process_rate(payload: bytes, row, seconds: float, start, out) -> None:
    import joblib

    forest = joblib.load(io.BytesIO(payload))
    for _ in range(50):
        forest.predict(row)
    start.wait()
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        forest.predict(row)
        count += 1
    out.put(count)


def _client(port, token, path, body, seconds, start, out):
    client = Client(port, token)
    for _ in range(20):
        client.post_raw(path, body)
    start.wait()
    timings, deadline = [], time.perf_counter() + seconds
    while True:
        began = time.perf_counter()
        if began >= deadline:
            break
        client.post_raw(path, body)
        timings.append(time.perf_counter() - began)
    out.put((os.getpid(), timings, client.reconnects))


def _concurrent(port, token, path, body, clients, seconds) -> dict:
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(clients), context.Queue()
    workers = [context.Process(target=_client, args=(port, token, path, body, seconds, start,
                                                     out)) for _ in range(clients)]
    for worker in workers:
        worker.start()
    profilers = _profile(port, seconds)
    results = [out.get(timeout=seconds + 120) for _ in workers]
    for profiler in profilers:
        profiler.wait()
    for worker in workers:
        worker.join()
    counts = [len(t) for _, t, _ in results]
    every = [x for _, t, _ in results for x in t]
    per_client = [(percentile(t, 50) * 1000, percentile(t, 99) * 1000) for _, t, _ in results]
    return {"req_per_s": round(sum(counts) / seconds, 1),
            "p50_ms": round(percentile(every, 50) * 1000, 2),
            "p99_ms": round(percentile(every, 99) * 1000, 2),
            "per_client": [{"requests": c, "p50_ms": round(a, 2), "p99_ms": round(b, 2)}
                           for c, (a, b) in zip(counts, per_client, strict=True)],
            "share_ratio": round(max(counts) / max(1, min(counts)), 2),
            "reconnects": sum(r for _, _, r in results)}


def _profile(port, seconds) -> list:
    """With BENCH_PYSPY=<folder>: py-spy records every gunicorn worker during the run
    (raw collapsed stacks, one file per worker, summed up by bench/pyspy_summary.py)."""
    folder = os.environ.get("BENCH_PYSPY")
    if not folder:
        return []
    pid = _server.running[port]
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", child, "--duration",
         str(int(seconds)), "--rate", "200", "--format", "raw", "-o",
         f"{folder}/worker-{child}.txt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for child in children]


def _in_process_limit(payload, row, seconds, processes=2) -> float:
    # Spawned, not forked: in a child forked from this (Django-configured) process
    # scikit-learn warned once per tree on every call, which made the "limit" a third of it.
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_in_process_rate, args=(payload, row, seconds, start, out))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    counts = [out.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    return sum(counts) / seconds


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of gunicorn's master and workers so far."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    ticks = 0
    for each in [pid, *map(int, children)]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _pss(pid: int) -> list[tuple[int, int, int]]:
    """(pid, RSS KiB, PSS KiB) of gunicorn's master and each of its workers."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    out = []
    for each in [pid, *map(int, children)]:
        fields = {}
        for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines()[1:]:
            key, value = line.split(":", 1)
            fields[key] = int(value.split()[0])
        out.append((each, fields["Rss"], fields["Pss"]))
    return out


def _print_pss(label, rows) -> dict:
    total = sum(p for _, _, p in rows)
    detail = ", ".join(f"{'master' if i == 0 else 'worker'} {r / 1024:.0f}/{p / 1024:.0f}"
                       for i, (_, r, p) in enumerate(rows))
    print(f"  {label}: PSS of master + workers {total / 1024:,.1f} MiB (RSS/PSS MiB: {detail})")
    return {"pss_mib": round(total / 1024, 1),
            "processes": [{"rss_mib": round(r / 1024, 1), "pss_mib": round(p / 1024, 1)}
                          for _, r, p in rows]}


def _scale(env, token, people, args, batches) -> dict:
    from django.db import connection

    payload, X, forest = _forest20()
    names = [f"x{i:02d}" for i in range(FEATURES)]
    _register("forest20_0", payload, names, people["dana"], people["root"])
    connection.close()
    row, batch = X[:1], X[:1000]
    single_body = json.dumps({"inputs": row.tolist()}).encode()
    path = "/api/v1/models/forest20_0/predict/"
    results = {}
    print(f"\nforest of 100 trees on {FEATURES} features, single rows and 1,000-row batches")
    with _server(env) as port:
        client = Client(port, token)
        # Alternated call by call, so a busy moment of the machine hits both alike.
        api, local = [], []
        server_cpu, local_cpu = 0.0, 0.0
        for index in range(int(args.seconds * 40) + 100):
            if index == 100:
                server_cpu, local_cpu = -_cpu_seconds(_server.running[port]), 0.0
            began = time.perf_counter()
            client.post_raw(path, single_body)
            middle = time.perf_counter()
            cpu = time.process_time()
            forest.predict(row)
            if index >= 100:
                local_cpu += time.process_time() - cpu
                api.append(middle - began)
                local.append(time.perf_counter() - middle)
        server_cpu += _cpu_seconds(_server.running[port])
        p50_api, p50_local = percentile(api, 50) * 1000, percentile(local, 50) * 1000
        per_request = {"server": server_cpu / len(api) * 1000,
                       "local": local_cpu / len(local) * 1000}
        results["single"] = {"api_p50_ms": round(p50_api, 3), "local_p50_ms": round(p50_local, 3),
                             "api_p99_ms": round(percentile(api, 99) * 1000, 3),
                             "server_cpu_ms_per_request": round(per_request["server"], 3),
                             "local_cpu_ms_per_predict": round(per_request["local"], 3)}
        print(f"  one client, single row: API p50 {p50_api:.3f} ms (p99 "
              f"{results['single']['api_p99_ms']:.3f}), in-process predict p50 {p50_local:.3f} ms"
              f" → overhead {p50_api - p50_local:.3f} ms (aim ≤ 1 ms)")
        print(f"    CPU time (less sensitive to the machine's load): gunicorn's processes "
              f"{per_request['server']:.3f} ms per request, in-process predict "
              f"{per_request['local']:.3f} ms → {per_request['server'] - per_request['local']:.3f}"
              " ms")

        runs = []
        for _ in range(2):  # alternated: in-process limit, server, limit, server
            limit = _in_process_limit(payload, row, args.seconds)
            load = _load()
            served = _concurrent(port, token, path, single_body, args.clients, args.seconds)
            runs.append({"in_process_2_req_per_s": round(limit, 1), "load": load, **served})
            ratio = served["req_per_s"] / limit
            print(f"  {args.clients} clients: {served['req_per_s']:.0f} req/s against "
                  f"{limit:.0f}/s in process on 2 processes = {ratio:.2f} (aim ≥ 0.8); "
                  f"p50 {served['p50_ms']:.1f} / p99 {served['p99_ms']:.1f} ms = "
                  f"{served['p99_ms'] / served['p50_ms']:.1f}× (aim ≤ 4); max/min share "
                  f"{served['share_ratio']:.2f} (aim ≤ 1.5); reconnects "
                  f"{served['reconnects']}; load {load}")
            print("    per client (requests, p50/p99 ms): " + "; ".join(
                f"{c['requests']} {c['p50_ms']:.1f}/{c['p99_ms']:.1f}"
                for c in served["per_client"]))
        results["concurrency"] = runs

        (binary_body, binary_headers), (json_body, json_headers) = _oip_bodies(
            batch.astype(np.float32))
        infer = "/v2/models/forest20_0/infer"
        timings = {"binary": [], "json": [], "local": []}
        batch32 = batch.astype(np.float32).astype(np.float64)
        for index in range(batches + 5):
            for key in timings:
                began = time.perf_counter()
                if key == "local":
                    forest.predict_proba(batch32)
                else:
                    body, headers = ((binary_body, binary_headers) if key == "binary"
                                     else (json_body, json_headers))
                    client.post_raw(infer, body, headers)
                if index >= 5:
                    timings[key].append(time.perf_counter() - began)
        rows_s = {k: 1000 / statistics.median(v) for k, v in timings.items()}
        results["batch_rows_per_s"] = {k: round(v) for k, v in rows_s.items()}
        print(f"  1,000-row batches, OIP predict + predict_proba: binary "
              f"{rows_s['binary']:,.0f} rows/s ({rows_s['binary'] / rows_s['local']:.2f} of in "
              f"process, aim ≥ 0.9), JSON {rows_s['json']:,.0f} "
              f"({rows_s['json'] / rows_s['local']:.2f}, aim ≥ 0.8); in process "
              f"{rows_s['local']:,.0f} rows/s; load {_load()}")
        results["memory_1"] = _print_pss("serving 1 forest", _pss(_server_pid(port)))

    for i in range(1, args.models):
        _register(f"forest20_{i}", payload, names, people["dana"], people["root"])
    connection.close()
    with _server(env) as port:
        client = Client(port, token)
        for i in range(args.models):  # every worker answers each model at least once
            for _ in range(8):
                client.post_raw(f"/api/v1/models/forest20_{i}/predict/", single_body)
        results[f"memory_{args.models}"] = _print_pss(f"serving {args.models} forests",
                                                      _pss(_server_pid(port)))
    per_model = ((results[f"memory_{args.models}"]["pss_mib"] - results["memory_1"]["pss_mib"])
                 / (args.models - 1))
    print(f"  → PSS per extra forest (all processes together): {per_model:.1f} MiB "
          f"(artifact {len(payload) / 2**20:.1f} MiB)")
    return results


def _server_pid(port) -> int:
    return _server.running[port]


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
