"""Two app nodes on one machine (issue 14, part 4): a deployment approved through node A is
served by node B, and single-row throughput as each node runs 1, 2 and 4 web workers.

Each node is a gunicorn (gthread, 4 threads per worker, models preloaded) and a Celery worker
with its own APP_VAR_DIR; both share one PostgreSQL database, one Redis database (broker and
cache) and one store folder, as two machines behind a load balancer would.

Deployments: version 1.N.0 (validated, in staging) is asked for production through node A's
API by its author, its production validation runs on whichever node's worker takes it, and an
admin approves it through node A's API. Node B is polled on its own prediction API until it
answers with 1.N.0. Printed: approve → deployment completed (the worker), completed → node B's
first answer with the new version, and approve → node B in all.

Throughput: 8 keep-alive clients (4 per node) send single rows for a while at each worker
count; printed: req/s (total, per node), p50/p99, the PostgreSQL connections open during the
run, each node's web workers' PSS, and the prediction log's growth per request.

    .venv/bin/python bench/bench_scaleout.py [--quick] [--ports 18601,18602]
    (defaults: DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scaleout, dropped and
    recreated; REDIS_URL=redis://127.0.0.1:6379/6, flushed)
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/bench_scaleout"
DEFAULT_REDIS = "redis://127.0.0.1:6379/6"
FEATURES = [f"f{i:02d}" for i in range(20)]
MODEL = "scaleout_forest"


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ports", default="18601,18602", help="node A's and node B's ports")
    parser.add_argument("--deployments", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4", help="web workers per node, in turn")
    parser.add_argument("--clients", type=int, default=8)
    return parser.parse_args()


args = _arguments()
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE)
os.environ.setdefault("REDIS_URL", DEFAULT_REDIS)
# Nodes must share their keys: in development each APP_VAR_DIR would otherwise make its own,
# and node B would refuse node A's tokens (and sign audit events with another chain key).
for _key in ("SECRET_KEY", "JWT_SIGNING_KEY", "AUDIT_CHAIN_KEY"):
    os.environ.setdefault(_key, secrets.token_urlsafe(48))

from common import (  # noqa: E402
    Processes,
    load_line,
    percentile,
    remove,
    require_free_port,
    save,
    scratch_django,
    wait_http,
)

ROOT = Path(__file__).resolve().parents[1]


class Node:
    """One app node: gunicorn + a Celery worker, its own APP_VAR_DIR."""

    def __init__(self, name, port, env, scratch, processes):
        self.name, self.port, self.processes = name, port, processes
        self.var = scratch / f"node-{name}-var"
        self.env = {**env, "APP_VAR_DIR": str(self.var), "GUNICORN_BIND": f"127.0.0.1:{port}",
                    "GUNICORN_THREADS": "4", "GUNICORN_ACCESSLOG": "",
                    "PREDICTION_PRELOAD": "true", "PREDICTION_RATE_LIMIT_PER_HOUR": "100000000",
                    "JWT_ACCESS_TOKEN_MINUTES": "600"}
        self.web = self.worker = None

    def start_worker(self):
        self.worker = self.processes.start(
            f"worker {self.name}", [sys.executable, "-m", "celery", "-A", "config", "worker",
                                    "--concurrency=1", "--loglevel=WARNING",
                                    f"--hostname=node-{self.name}@%h"],
            log=self.var / "log" / "worker.log", cwd=ROOT, env=self.env)

    def start_web(self, workers: int):
        if self.web is not None:
            self.processes.stop(self.web)
            self.processes.children = [c for c in self.processes.children if c[1] is not self.web]
        require_free_port(self.port, f"node {self.name}'s gunicorn")
        self.web = self.processes.start(
            f"web {self.name}", [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py",
                                 "config.wsgi:application"],
            log=self.var / "log" / "web.log", cwd=ROOT,
            env={**self.env, "GUNICORN_WORKERS": str(workers)})

    def wait(self):
        wait_http(self.port, "/ping", self.web, what=f"node {self.name}'s gunicorn")

    def web_pss_mib(self) -> list[float]:
        """PSS of each gunicorn worker (the master's children)."""
        pids = Path(f"/proc/{self.web.pid}/task/{self.web.pid}/children").read_text().split()
        out = []
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        out.append(int(line.split()[1]) / 1024)
            except OSError:
                pass
        return out


class Client:
    def __init__(self, port, headers):
        self.port, self.headers = port, headers
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, payload=None, ok=(200,)):
        body = None if payload is None else json.dumps(payload).encode()
        headers = {**self.headers, "Content-Type": "application/json"}
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                if attempt == 2:
                    raise
                self.connection.close()
        if response.status not in ok:
            raise RuntimeError(f"{method} {path} on :{self.port}: {response.status} "
                               f"{data[:400]!r}")
        return json.loads(data) if data else None


def _forest_bytes():
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=5000, n_features=len(FEATURES), n_informative=10,
                               random_state=7)
    forest = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=42, n_jobs=1)
    buffer = io.BytesIO()
    joblib.dump(forest.fit(X, y), buffer)
    return buffer.getvalue(), X


def _prepare(payload: bytes, deployments: int):
    """People; the forest's 1.0.0 in production; 1.1.0 ... 1.N.0 validated, in staging."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from rest_framework_simplejwt.tokens import RefreshToken

    from core import roles
    from governance import services as governance
    from predictions import services as predictions
    from registry import services, store

    roles.ensure_groups()
    User = get_user_model()
    people = {}
    for name, role in (("dana", roles.DATA_SCIENTIST), ("root", roles.ADMIN),
                       ("svc", roles.SERVICE)):
        people[name] = User.objects.create_user(name)
        people[name].groups.add(Group.objects.get(name=role))
    dana, root = people["dana"], people["root"]
    services.model_create(name=MODEL, task_type="classification", owner=dana, actor=dana)
    for minor in range(deployments + 1):
        version = services.version_register(
            model_name=MODEL, version=f"1.{minor}.0", framework="sklearn",
            metadata={"features": FEATURES, "metrics": {"accuracy": 0.9}},
            files=[store.ingest_stream(io.BytesIO(payload), name="model.joblib",
                                       role="model")], actor=dana)
        run = governance.validation_request_now(version)
        if run.status != "passed":
            raise SystemExit(f"{version} did not pass validation: {run.summary}")
        stages = ("staging", "production") if minor == 0 else ("staging",)
        for stage in stages:
            governance.version_force_stage(version=version, to_stage=stage, actor=root,
                                           reason="benchmark set-up")
    tokens = {"svc": predictions.api_token_create(user=people["svc"], name="bench",
                                                  actor=root)[1],
              "dana": str(RefreshToken.for_user(dana).access_token),
              "root": str(RefreshToken.for_user(root).access_token)}
    connection.close()
    return tokens


def _model_memory_mib(payload: bytes, folder: Path) -> tuple[float, float]:
    """(file MiB, RSS a loaded copy adds to a fresh process that has imported scikit-learn)."""
    path = folder / "forest.joblib"
    path.write_bytes(payload)
    code = ("import sys, numpy, joblib, sklearn.ensemble\n"
            "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
            "before = rss(); model = joblib.load(sys.argv[1])\n"
            "model.predict(numpy.zeros((1, model.n_features_in_))); print(rss() - before)")
    added = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                           text=True, check=True).stdout
    return len(payload) / 2**20, int(added) / 2**20


def _deploy(nodes, tokens, row, minor) -> dict:
    """Ask and approve 1.minor.0 through node A; poll node B until it serves it."""
    from django.db import connection

    from governance.models import ApprovalRequest, Deployment, ValidationRun

    a, b = nodes
    version = f"1.{minor}.0"
    author = Client(a.port, {"Authorization": f"Bearer {tokens['dana']}"})
    admin = Client(a.port, {"Authorization": f"Bearer {tokens['root']}"})
    watcher = Client(b.port, {"Authorization": f"Bearer {tokens['svc']}"})
    predict = f"/api/v1/models/{MODEL}/predict/"
    answer = author.call("POST", f"/api/v1/models/{MODEL}/versions/{version}/transitions/",
                         {"to_stage": "production", "reason": "bench_scaleout"}, ok=(202,))
    request_id = answer["request"]["id"]
    # The production request re-validates on a worker; approve once that passed, so the
    # figure below is the deployment's path alone.
    run_id = ApprovalRequest.objects.get(pk=request_id).validation_run_id
    deadline = time.monotonic() + 120
    while not ValidationRun.objects.get(pk=run_id).finished:
        if time.monotonic() > deadline:
            raise SystemExit(f"validation #{run_id} did not finish on a worker in 120 s")
        time.sleep(0.05)
    connection.close()
    assert watcher.call("POST", predict, {"inputs": row})["version"] != version
    admin.call("POST", f"/api/v1/approvals/{request_id}/approve", {"comment": "four eyes"})
    approved = time.time()
    while True:
        if watcher.call("POST", predict, {"inputs": row})["version"] == version:
            served = time.time()
            break
        if time.time() - approved > 60:
            raise SystemExit(f"node B did not serve {version} within 60 s of the approval")
        time.sleep(0.01)
    deployment = Deployment.objects.get(request_id=request_id)
    completed = deployment.completed_at.timestamp()
    connection.close()
    return {"version": version, "approve_to_completed_s": completed - approved,
            "completed_to_served_s": served - completed, "approve_to_served_s": served - approved}


def _throughput(nodes, token, row, clients, seconds) -> dict:
    """`clients` keep-alive clients, half on each node, single rows for `seconds`."""
    from django.db import connection

    per_client = [[] for _ in range(clients)]
    errors, stop = [], threading.Event()
    barrier = threading.Barrier(clients + 1)

    def run(index):
        node = nodes[index % 2]
        client = Client(node.port, {"Authorization": f"Bearer {token}"})
        client.call("POST", f"/api/v1/models/{MODEL}/predict/", {"inputs": row})
        barrier.wait()
        try:
            while not stop.is_set():
                began = time.perf_counter()
                client.call("POST", f"/api/v1/models/{MODEL}/predict/", {"inputs": row})
                per_client[index].append(time.perf_counter() - began)
        except Exception as exc:  # noqa: BLE001 - the run is void, said below
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    time.sleep(seconds / 2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND pid <> pg_backend_pid()")
        pg_connections = cursor.fetchone()[0]
    connection.close()
    time.sleep(seconds / 2)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise SystemExit(f"clients failed: {errors[:3]}")
    every = [t for timings in per_client for t in timings]
    per_node = [sum(len(per_client[i]) for i in range(n, clients, 2)) / elapsed
                for n in (0, 1)]
    return {"req_s": len(every) / elapsed, "per_node_req_s": per_node,
            "requests": len(every), "p50_ms": percentile(every, 50) * 1000,
            "p99_ms": percentile(every, 99) * 1000, "pg_connections": pg_connections}


def _log_bytes() -> tuple[int, int]:
    from django.db import connection

    from predictions.models import PredictionLog

    table = PredictionLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [table])
        size = cursor.fetchone()[0]
    count = PredictionLog.objects.count()
    connection.close()
    return size, count


def main():
    seconds = 4.0 if args.quick else 10.0
    deployments = 1 if args.quick else args.deployments
    ports = [int(p) for p in args.ports.split(",")]
    for port, name in zip(ports, "AB", strict=True):
        require_free_port(port, f"node {name}'s gunicorn")
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    scratch, env = scratch_django("bench-scaleout")
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("two nodes need a shared database server: set DATABASE_URL to "
                         "PostgreSQL (default: " + DEFAULT_DATABASE + ")")
    processes = Processes()
    results = {"started": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "load_before": load_line()}
    try:
        payload, X = _forest_bytes()
        tokens = _prepare(payload, deployments)
        row = X[:1].tolist()
        results["model_file_mib"], results["model_rss_mib"] = _model_memory_mib(payload, scratch)
        print(f"the forest: {results['model_file_mib']:.1f} MiB on disk; a loaded copy adds "
              f"{results['model_rss_mib']:.1f} MiB to a process", flush=True)
        nodes = [Node(name, port, env, scratch, processes)
                 for name, port in zip("ab", ports, strict=True)]
        for node in nodes:
            node.start_worker()
            node.start_web(2)
        for node in nodes:
            node.wait()
        time.sleep(2)  # preloading
        print(f"two nodes on :{ports[0]} and :{ports[1]}, PostgreSQL "
              f"{connection.settings_dict['NAME']}, Redis {os.environ['REDIS_URL']}, one store "
              f"({scratch / 'models'}); {results['load_before']}", flush=True)

        results["deployments"] = []
        for minor in range(1, deployments + 1):
            found = _deploy(nodes, tokens, row, minor)
            results["deployments"].append(found)
            print(f"deployment of {found['version']} approved through node A: completed by a "
                  f"worker after {found['approve_to_completed_s'] * 1000:.0f} ms, served by "
                  f"node B {found['completed_to_served_s'] * 1000:.0f} ms later; approve → "
                  f"node B serves it: {found['approve_to_served_s'] * 1000:.0f} ms", flush=True)

        results["throughput"], running = [], 2
        size_before, rows_before = _log_bytes()
        print("\n| web workers per node | req/s (A + B) | p50 / p99 | PostgreSQL connections "
              "| web worker PSS (A; B) |\n| --- | --- | --- | --- | --- |")
        for workers in [int(w) for w in args.workers.split(",")]:
            if workers != running:
                running = workers
                for node in nodes:
                    node.start_web(workers)
                for node in nodes:
                    node.wait()
                time.sleep(2)
            found = _throughput(nodes, tokens["svc"], row, args.clients, seconds)
            pss = [node.web_pss_mib() for node in nodes]
            found.update(workers=workers, pss_mib=pss)
            results["throughput"].append(found)
            print(f"| {workers} | {found['req_s']:.0f} ({found['per_node_req_s'][0]:.0f} + "
                  f"{found['per_node_req_s'][1]:.0f}) | {found['p50_ms']:.1f} / "
                  f"{found['p99_ms']:.1f} ms | {found['pg_connections']} | "
                  f"{'; '.join(', '.join(f'{m:.0f}' for m in p) for p in pss)} MiB |",
                  flush=True)
        for node in nodes:  # gunicorn flushes the buffered prediction logs at exit
            processes.stop(node.web)
        size_after, rows_after = _log_bytes()
        if rows_after > rows_before:
            results["log_bytes_per_row"] = (size_after - size_before) / (rows_after - rows_before)
            print(f"\nprediction log: the {rows_after - rows_before:,} requests above grew the "
                  f"table by {(size_after - size_before) / 1e6:.1f} MB: "
                  f"{results['log_bytes_per_row']:.0f} B per single-row prediction")
        results["load_after"] = load_line()
        print(f"{results['load_after']} after")
    finally:
        processes.stop_all()
        remove(scratch)
    save("scaleout", "postgresql", results)


if __name__ == "__main__":
    main()
