"""This app against MLflow, and both against the in-process limit, in one run (issue 14, part 5).

Peers: `mlflow server --workers 1` (SQLite backend store and artifacts under var/bench-peers/)
for the registry, and `mlflow models serve` for predictions, from a separate virtualenv,
var/bench-peers-venv (created on the first run, reused afterwards: MLflow pinned below, and
scikit-learn, pandas, NumPy, SciPy and joblib at this app's pins, so the one fitted forest, 100
trees on 20 features, loads the same on both sides). This app: gunicorn on 127.0.0.1 with
config/gunicorn.py's defaults (sync workers, two per core, models preloaded in the master), a
scratch database and store as the other benchmarks.

Registry operations go through each side's REST API on one keep-alive connection; predictions
send the same bytes to both (`{"inputs": [[...]]}` to MLflow's /invocations and to this app's
MLflow-shaped /mlflow/<name>/invocations). Each measure runs in rounds, alternating which side
goes first. The limit is the forest's `predict` in this process (and in 2 processes for the
concurrency row).

    .venv/bin/python bench/bench_peers.py            # about 4 minutes after the first run
    .venv/bin/python bench/bench_peers.py --quick    # about 1.5 minutes
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_peers .venv/bin/python bench/bench_peers.py

(With DATABASE_URL the app's database is dropped and recreated: give it a scratch name.
MLflow's store is always SQLite.)
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np
from common import (  # noqa: E402
    ROOT,
    Processes,
    free_port,
    load_line,
    percentile,
    remove,
    require_free_port,
    save,
    scratch_django,
    wait_http,
)

MLFLOW_PIN = "mlflow==3.17.2"
SHARED_PINS = ("scikit-learn", "pandas", "numpy", "scipy", "joblib")
VENV = ROOT / "var" / "bench-peers-venv"
WORK = ROOT / "var" / "bench-peers"
FEATURES = [f"f{i:02d}" for i in range(20)]
MODEL = "peers_forest"
LIST_MODEL = "peers_list"
REG_MODEL = "peers_reg"
LIST_SIZE = 500


# --- the peer's virtualenv -----------------------------------------------------------------

def _pins() -> list[str]:
    found = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            spec = line.split("#")[0].strip()
            if "==" in spec:
                package, version = spec.split("==")
                found[package.split("[")[0].strip().lower()] = version.strip()
    missing = [p for p in SHARED_PINS if p not in found]
    if missing:
        raise SystemExit(f"requirements*.txt pins no version of {', '.join(missing)}")
    return [MLFLOW_PIN] + [f"{p}=={found[p]}" for p in SHARED_PINS]


def ensure_venv() -> Path:
    """var/bench-peers-venv with MLflow and the shared pins; reinstalled only when they change."""
    wanted = "\n".join(_pins()) + "\n"
    marker = VENV / "bench-peers-pins.txt"
    python = VENV / "bin" / "python"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return VENV
    print(f"creating {VENV.relative_to(ROOT)} with {', '.join(wanted.split())} ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted.split()],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"pip could not install {wanted.split()} into {VENV}:\n"
                         f"{result.stderr[-3000:]}")
    marker.write_text(wanted)
    return VENV


# --- HTTP ----------------------------------------------------------------------------------

class Client:
    """One keep-alive HTTP/1.1 connection; every answer is read whole and its status checked."""

    def __init__(self, port: int, headers: dict | None = None):
        self.port = port
        self.headers = headers or {}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.reconnects = 0

    def call(self, method: str, path: str, body=None, *, headers=None, ok=(200,)) -> bytes:
        merged = {**self.headers, **(headers or {})}
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=merged)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                if attempt == 2:
                    raise
                self.reconnects += 1  # the server closed an idle connection: count it, go on
                self.connection.close()
        if response.status not in ok:
            raise RuntimeError(f"{method} {path} on :{self.port}: {response.status} "
                               f"{data[:400]!r}")
        return data

    def json(self, method: str, path: str, payload=None, *, ok=(200,)):
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else None
        data = self.call(method, path, body, headers=headers, ok=ok)
        return json.loads(data) if data else None


def _timed(call, n: int) -> list[float]:
    timings = []
    for index in range(n):
        started = time.perf_counter()
        call(index)
        timings.append(time.perf_counter() - started)
    return timings


# --- the two registries ----------------------------------------------------------------------

class AppRegistry:
    name = "app"

    def __init__(self, port: int, token: str):
        self.client = Client(port, {"Authorization": f"Bearer {token}"})
        self.registered: list[str] = []

    def create_model(self, tag: str) -> None:
        self.client.json("POST", "/api/v1/models/", {"name": f"cm_{tag}",
                                                     "task_type": "classification"}, ok=(201,))

    def register(self, tag: str, payload: bytes) -> None:
        version = f"{len(self.registered) + 1}.0.0"
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                 .encode() for k, v in (("version", version), ("framework", "sklearn"),
                                        ("metadata", json.dumps({"features": FEATURES})))]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="model.joblib"\r\nContent-Type: application/octet-stream'
                     f'\r\n\r\n'.encode() + payload + f"\r\n--{boundary}--\r\n".encode())
        self.client.call("POST", f"/api/v1/models/{REG_MODEL}/versions/", b"".join(parts),
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                         ok=(201,))
        self.registered.append(version)

    def transition(self, index: int) -> None:
        self.client.json("POST", f"/api/v1/models/{REG_MODEL}/versions/"
                         f"{self.registered[index]}/transitions/", {"to_stage": "staging"},
                         ok=(202,))

    def get_version(self) -> None:
        self.client.call("GET", f"/api/v1/models/{LIST_MODEL}/versions/1.0.17/")

    def list_versions(self) -> int:
        data = self.client.json("GET", f"/api/v1/models/{LIST_MODEL}/versions/"
                                f"?page_size={LIST_SIZE}")
        return len(data["results"])

    def set_tag(self, index: int) -> None:
        self.client.json("PATCH", f"/api/v1/models/{REG_MODEL}/versions/"
                         f"{self.registered[index]}/", {"tags": [f"t{index}"]})


class MlflowRegistry:
    name = "MLflow"
    API = "/api/2.0/mlflow"

    def __init__(self, port: int):
        self.client = Client(port)
        self.registered: list[str] = []

    def create_model(self, tag: str) -> None:
        self.client.json("POST", f"{self.API}/registered-models/create", {"name": f"cm_{tag}"})

    def register(self, tag: str, payload: bytes) -> None:
        # MLflow's own two steps for a version with a file: the artifact PUT, then create.
        # (MLflow accepts a version's source only inside the run it names.)
        self.client.call("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{self.run_path}/{tag}/"
                         "model.joblib", payload,
                         headers={"Content-Type": "application/octet-stream"})
        made = self.client.json("POST", f"{self.API}/model-versions/create", {
            "name": REG_MODEL, "source": f"{self.run_uri}/{tag}", "run_id": self.run_id})
        self.registered.append(made["model_version"]["version"])

    def transition(self, index: int) -> None:
        self.client.json("POST", f"{self.API}/model-versions/transition-stage", {
            "name": REG_MODEL, "version": self.registered[index], "stage": "Staging",
            "archive_existing_versions": False})

    def get_version(self) -> None:
        self.client.call("GET", f"{self.API}/model-versions/get?name={LIST_MODEL}&version=17")

    def list_versions(self) -> int:
        query = quote(f"name='{LIST_MODEL}'")
        data = self.client.json("GET", f"{self.API}/model-versions/search?filter={query}"
                                f"&max_results={LIST_SIZE}")
        return len(data["model_versions"])

    def set_tag(self, index: int) -> None:
        self.client.json("POST", f"{self.API}/model-versions/set-tag", {
            "name": REG_MODEL, "version": self.registered[index], "key": "t",
            "value": str(index)})

    def prepare(self) -> None:
        run = self.client.json("POST", f"{self.API}/runs/create",
                               {"experiment_id": "0"})["run"]["info"]
        self.run_id, self.run_uri = run["run_id"], run["artifact_uri"]
        self.run_path = self.run_uri.removeprefix("mlflow-artifacts:/")
        self.client.json("POST", f"{self.API}/registered-models/create", {"name": REG_MODEL})
        self.client.json("POST", f"{self.API}/registered-models/create", {"name": LIST_MODEL})
        for _ in range(LIST_SIZE):
            self.client.json("POST", f"{self.API}/model-versions/create", {
                "name": LIST_MODEL, "source": f"{self.run_uri}/list", "run_id": self.run_id})


def registry_rounds(app: AppRegistry, peer: MlflowRegistry, rounds: int, n: int,
                    payload: bytes) -> dict:
    """{operation: {side: [seconds...]}}, each operation's rounds alternating the sides."""
    timings: dict = {}
    for round_ in range(rounds):
        sides = (app, peer) if round_ % 2 == 0 else (peer, app)
        for side in sides:
            def add(op, values, side=side):
                timings.setdefault(op, {}).setdefault(side.name, []).extend(values)

            start = len(side.registered)
            add("create registered model", _timed(
                lambda i, s=side, r=round_: s.create_model(f"{r}_{i}"), n))
            add("register a version (1 KB file)", _timed(
                lambda i, s=side, r=round_: s.register(f"{r}_{i}", payload), n))
            add("set a version tag", _timed(lambda i, s=side, b=start: s.set_tag(b + i), n))
            add("transition (to staging)", _timed(
                lambda i, s=side, b=start: s.transition(b + i), n))
            add("get version", _timed(lambda i, s=side: s.get_version(), 5 * n))
            counts = []
            add(f"list/search {LIST_SIZE} versions", _timed(
                lambda i, s=side, c=counts: c.append(s.list_versions()), max(3, n // 2)))
            if set(counts) != {LIST_SIZE}:
                raise RuntimeError(f"{side.name} listed {set(counts)} versions, not {LIST_SIZE}")
    return timings


# --- predictions -----------------------------------------------------------------------------

def predict_rounds(sides: dict, bodies: dict, rounds: int, singles: int, batches: int,
                   seconds: float, clients: int, limit_args) -> tuple[dict, dict]:
    """Single-row latency, 1,000-row batches and `clients` concurrent single-row clients
    against each side ({name: (port, path, headers)}), and the in-process limit, in rounds
    that alternate the order (so a burst of load elsewhere on the machine hits all three)."""
    out: dict = {}
    limit: dict = {"single": [], "batch_rows_s": [], "concurrent_req_s": []}
    names = [*sides, "limit"]
    for round_ in range(rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            if name == "limit":
                found = _limits_in_fresh_process(*limit_args, singles, batches, seconds)
                for key, value in found.items():
                    limit[key] += value if isinstance(value, list) else [value]
                continue
            port, path, headers = sides[name]
            client = Client(port, {**headers, "Content-Type": "application/json"})
            for _ in range(20):
                client.call("POST", path, bodies["single"])
            out.setdefault(("single", name), []).extend(
                _timed(lambda i, c=client, p=path: c.call("POST", p, bodies["single"]), singles))
            client.call("POST", path, bodies["batch"])
            out.setdefault(("batch", name), []).extend(
                _timed(lambda i, c=client, p=path: c.call("POST", p, bodies["batch"]), batches))
            client.connection.close()
            out.setdefault(("concurrent", name), []).append(
                _concurrent(port, path, headers, bodies["single"], clients, seconds))
    limit["batch_rows_s"] = statistics.median(limit["batch_rows_s"])
    limit["concurrent_req_s"] = statistics.median(limit["concurrent_req_s"])
    return out, limit


def _concurrent(port, path, headers, body, clients, seconds) -> dict:
    """`clients` threads, each on its own keep-alive connection, for `seconds`."""
    per_client: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    stop = threading.Event()

    def run(index):
        client = Client(port, {**headers, "Content-Type": "application/json"})
        client.call("POST", path, body)
        start.wait()
        timings = per_client[index]
        try:
            while not stop.is_set():
                began = time.perf_counter()
                client.call("POST", path, body)
                timings.append(time.perf_counter() - began)
        except Exception as exc:  # noqa: BLE001 - reported below, the run is then void
            errors.append(repr(exc))
        finally:
            client.connection.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"concurrent clients failed on :{port}: {errors[:3]}")
    counts = [len(t) for t in per_client]
    every = [t for timings in per_client for t in timings]
    return {"req_s": sum(counts) / elapsed, "p50": percentile(every, 50),
            "p99": percentile(every, 99), "share": max(counts) / max(1, min(counts))}


def _limits_in_fresh_process(joblib_path, singles, batches, seconds) -> dict:
    """The limit, measured in a new interpreter that holds only the forest and the rows, so
    that nothing of this process (Django, the timings) is in its way. (Under a load of 18-20
    on 2 cores it still took 2-3x a server's time per row: bench/README.md.)"""
    result = subprocess.run([sys.executable, __file__, "--limit-of", str(joblib_path),
                             str(singles), str(batches), str(seconds)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the in-process limit failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def _limit_main(joblib_path, singles, batches, seconds):
    import joblib

    rows = np.load(Path(joblib_path).with_suffix(".rows.npy"))  # the rows the servers get
    found = limits(joblib.load(joblib_path), rows, int(singles), int(batches), float(seconds))
    print(json.dumps(found))


def _spin(estimator, row, seconds, queue):
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        estimator.predict(row)
        count += 1
    queue.put(count)


def limits(estimator, X, singles, batches, seconds, processes=2) -> dict:
    row, batch = X[:1], X[:1000]
    for _ in range(20):
        estimator.predict(row)
    single = _timed(lambda i: estimator.predict(row), singles)
    batch_times = _timed(lambda i: estimator.predict(batch), batches)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_spin, args=(estimator, row, seconds, queue))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    total = sum(queue.get() for _ in workers)
    for worker in workers:
        worker.join()
    return {"single": single, "batch_rows_s": 1000 / statistics.median(batch_times),
            "concurrent_req_s": total / seconds}


# --- set-up ----------------------------------------------------------------------------------

def _forest():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=5000, n_features=len(FEATURES), n_informative=10,
                               random_state=7)
    forest = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=42, n_jobs=1)
    return forest.fit(X, y), X


def _prepare_app(forest_bytes: bytes) -> tuple[str, str]:
    """People, the forest in production, a model with 500 versions (rows only), the model that
    registrations go to. Returns (a data scientist's JWT, a service account's API token)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from rest_framework_simplejwt.tokens import RefreshToken

    from core import roles
    from governance import services as governance
    from predictions import services as predictions
    from registry import services, store
    from registry.models import ArtifactFile, ModelVersion
    from registry.versioning import parse_version

    roles.ensure_groups()
    User = get_user_model()
    people = {}
    for name, role in (("dana", roles.DATA_SCIENTIST), ("root", roles.ADMIN),
                       ("svc", roles.SERVICE)):
        people[name] = User.objects.create_user(name, password=uuid.uuid4().hex)
        people[name].groups.add(Group.objects.get(name=role))
    dana, root = people["dana"], people["root"]
    services.model_create(name=MODEL, task_type="classification", owner=dana, actor=dana)
    version = services.version_register(
        model_name=MODEL, version="1.0.0", framework="sklearn",
        metadata={"features": FEATURES, "metrics": {"accuracy": 0.9}},
        files=[store.ingest_stream(io.BytesIO(forest_bytes), name="model.joblib",
                                   role="model")], actor=dana)
    run = governance.validation_request_now(version)
    if run.status != "passed":
        raise SystemExit(f"the forest did not pass validation: {run.summary}")
    for stage in ("staging", "production"):
        governance.version_force_stage(version=version, to_stage=stage, actor=root,
                                       reason="benchmark")
    services.model_create(name=REG_MODEL, task_type="classification", owner=dana, actor=dana)
    many = services.model_create(name=LIST_MODEL, task_type="classification", owner=dana,
                                 actor=dana)
    rows = []
    for index in range(LIST_SIZE):
        parsed = parse_version(f"{index // 100}.{(index // 10) % 10}.{index % 10 + 10}")
        rows.append(ModelVersion(
            model=many, version=parsed.text, number=index + 1, major=parsed.major,
            minor=parsed.minor, patch=parsed.patch, prerelease="",
            prerelease_key=parsed.prerelease_key, framework="sklearn", created_by=dana,
            algorithm="RandomForestClassifier", metrics={"accuracy": 0.8},
            features=FEATURES))
    made = ModelVersion.objects.bulk_create(rows)
    ArtifactFile.objects.bulk_create(
        [ArtifactFile(version=v, role="model", filename="model.joblib", position=0, size=1,
                      sha256="0" * 64) for v in made])
    token = predictions.api_token_create(user=people["svc"], name="bench", actor=root)[1]
    jwt = str(RefreshToken.for_user(dana).access_token)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    connection.close()
    return jwt, token


def _save_mlflow_model(venv: Path, joblib_path: Path, target: Path) -> None:
    # MLflow 3's default format is skops, which refuses the trees' node storage unless told to
    # trust it: we fitted this forest ourselves.
    code = ("import sys, joblib, mlflow.sklearn; "
            "mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], "
            "skops_trusted_types=['sklearn.tree._tree.Tree'])")
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code, str(joblib_path),
                             str(target)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"mlflow.sklearn.save_model failed:\n{result.stderr[-3000:]}")


# --- the table -------------------------------------------------------------------------------

def _ms(seconds):
    return seconds * 1000


def table(reg: dict, pred: dict, limit: dict, clients: int) -> list[dict]:
    rows = []

    def row(operation, app, peer, lim, app_speed, peer_speed, lim_speed):
        rows.append({"operation": operation, "app": app, "MLflow": peer, "limit": lim,
                     "app/MLflow": None if peer_speed is None else app_speed / peer_speed,
                     "app/limit": None if lim_speed is None else app_speed / lim_speed})

    for op, sides in reg.items():
        a, m = sides["app"], sides["MLflow"]
        a50, m50 = percentile(a, 50), percentile(m, 50)
        row(f"registry: {op}, p50 (ops/s)",
            f"{_ms(a50):.2f} ms ({len(a) / sum(a):.0f}/s)",
            f"{_ms(m50):.2f} ms ({len(m) / sum(m):.0f}/s)", "—",
            len(a) / sum(a), len(m) / sum(m), None)
    a, m, lim = pred[("single", "app")], pred[("single", "MLflow")], limit["single"]
    row("single-row predict p50 / p99",
        f"{_ms(percentile(a, 50)):.2f} / {_ms(percentile(a, 99)):.2f} ms",
        f"{_ms(percentile(m, 50)):.2f} / {_ms(percentile(m, 99)):.2f} ms",
        f"{_ms(percentile(lim, 50)):.2f} / {_ms(percentile(lim, 99)):.2f} ms",
        1 / percentile(a, 50), 1 / percentile(m, 50), 1 / percentile(lim, 50))
    a = 1000 / statistics.median(pred[("batch", "app")])
    m = 1000 / statistics.median(pred[("batch", "MLflow")])
    row("1,000-row batch, rows/s", f"{a:,.0f}", f"{m:,.0f}", f"{limit['batch_rows_s']:,.0f}",
        a, m, limit["batch_rows_s"])
    runs = {side: pred[("concurrent", side)] for side in ("app", "MLflow")}

    def summary(side):
        found = runs[side]
        req = statistics.median(r["req_s"] for r in found)
        p50 = statistics.median(r["p50"] for r in found)
        p99 = statistics.median(r["p99"] for r in found)
        share = max(r["share"] for r in found)
        return req, f"{req:.0f} req/s ({_ms(p50):.1f} / {_ms(p99):.1f} ms; share {share:.2f})"

    (a, a_text), (m, m_text) = summary("app"), summary("MLflow")
    row(f"{clients} concurrent clients, single rows: req/s (p50 / p99; max/min client share)",
        a_text, m_text, f"{limit['concurrent_req_s']:.0f} req/s (2 processes)",
        a, m, limit["concurrent_req_s"])
    return rows


def print_table(rows, header: str) -> str:
    def fmt(value):
        return "—" if value is None else f"{value:.2f}"

    lines = [header, "",
             "| operation | app | MLflow | limit | app/MLflow | app/limit |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['operation']} | {r['app']} | {r['MLflow']} | {r['limit']} | "
              f"{fmt(r['app/MLflow'])} | {fmt(r['app/limit'])} |" for r in rows]
    lines += ["", "Ratios are speeds (ops/s, rows/s, req/s, or 1/p50 for latency rows): above 1 "
              "the app is faster."]
    text = "\n".join(lines)
    print(text)
    return text


# --- main ------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (~1.5 min)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--serve-workers", type=int, default=2,
                        help="`mlflow models serve --workers` (the app: config/gunicorn.py, two per core)")
    args = parser.parse_args()
    if args.quick:
        rounds, n, singles, batches, seconds = 2, 10, 200, 5, 3.0
    else:
        rounds, n, singles, batches, seconds = 4, 25, 500, 15, 8.0

    venv = ensure_venv()
    processes = Processes()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    load_before = load_line()
    started_at = datetime.now(UTC)

    import joblib

    forest, X = _forest()
    joblib_path = WORK / "forest.joblib"
    joblib.dump(forest, joblib_path)
    np.save(joblib_path.with_suffix(".rows.npy"), X[:1000])
    _save_mlflow_model(venv, joblib_path, WORK / "mlflow-model")

    scratch, env = scratch_django("bench-peers")
    from django.db import connection

    try:
        jwt, token = _prepare_app(joblib_path.read_bytes())
        vendor = connection.vendor
        app_port = require_free_port(free_port(), "the app's gunicorn")
        env.update(GUNICORN_BIND=f"127.0.0.1:{app_port}", GUNICORN_ACCESSLOG="",
                   PREDICTION_PRELOAD="true",
                   PREDICTION_RATE_LIMIT_PER_HOUR="100000000", JWT_ACCESS_TOKEN_MINUTES="600")
        app = processes.start("app", [sys.executable, "-m", "gunicorn", "-c",
                                      "config/gunicorn.py", "config.wsgi:application"],
                              log=WORK / "app.log", cwd=ROOT, env=env)
        peer_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DJANGO", "DATABASE", "REDIS", "MODEL_", "APP_"))}
        # `mlflow models serve` execs `uvicorn` from PATH
        peer_env.update(PYTHONWARNINGS="ignore",
                        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        mlflow_bin = str(venv / "bin" / "mlflow")
        reg_port = require_free_port(free_port(), "mlflow server")
        server = processes.start("mlflow server", [
            mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(reg_port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{WORK / 'mlflow.sqlite3'}",
            "--artifacts-destination", str(WORK / "mlartifacts")],
            log=WORK / "mlflow-server.log", cwd=WORK, env=peer_env)
        serve_port = require_free_port(free_port(), "mlflow models serve")
        serve = processes.start("mlflow models serve", [
            mlflow_bin, "models", "serve", "-m", str(WORK / "mlflow-model"), "--env-manager",
            "local", "--host", "127.0.0.1", "--port", str(serve_port), "--workers",
            str(args.serve_workers)], log=WORK / "mlflow-serve.log", cwd=WORK, env=peer_env)
        wait_http(app_port, "/ping", app, what="the app's gunicorn")
        wait_http(reg_port, "/health", server, what="mlflow server")
        wait_http(serve_port, "/ping", serve, what="mlflow models serve")
        time.sleep(2)  # the app workers finish warming what they inherited

        print(f"app: gunicorn as config/gunicorn.py sets it, database {vendor}; MLflow "
              f"{MLFLOW_PIN.split('==')[1]}: server --workers 1 (SQLite), models serve "
              f"--workers {args.serve_workers}; {args.clients} concurrent clients; "
              f"python {sys.version.split()[0]}", flush=True)
        peer_registry = MlflowRegistry(reg_port)
        peer_registry.prepare()
        app_registry = AppRegistry(app_port, jwt)
        payload = os.urandom(1024)
        for side in (app_registry, peer_registry):  # warm-up: imports, connections
            side.create_model("warm")
            side.get_version()
            side.list_versions()
        print("registry ...", flush=True)
        reg = registry_rounds(app_registry, peer_registry, rounds, n, payload)

        row = X[:1].tolist()
        bodies = {"single": json.dumps({"inputs": row}).encode(),
                  "batch": json.dumps({"inputs": X[:1000].tolist()}).encode()}
        sides = {"app": (app_port, f"/mlflow/{MODEL}/invocations",
                         {"Authorization": f"Bearer {token}"}),
                 "MLflow": (serve_port, "/invocations", {})}
        _check_same_answers(sides, bodies["batch"])
        print("predictions and the in-process limit ...", flush=True)
        pred, limit = predict_rounds(sides, bodies, rounds, singles, batches, seconds,
                                     args.clients, (joblib_path,))
        load_after = load_line()
        header = (f"bench_peers.py{' --quick' if args.quick else ''}, "
                  f"{started_at:%Y-%m-%d %H:%M} UTC, app database {vendor}; {load_before} "
                  f"before, {load_after} after")
        rows = table(reg, pred, limit, args.clients)
        print()
        text = print_table(rows, header)
    finally:
        processes.stop_all()
        remove(scratch)
    save("peers", vendor, {"header": header, "rows": rows, "table": text})


def _check_same_answers(sides: dict, body: bytes) -> None:
    answers = {}
    for name, (port, path, headers) in sides.items():
        client = Client(port, {**headers, "Content-Type": "application/json"})
        answers[name] = json.loads(client.call("POST", path, body))["predictions"]
        client.connection.close()
    if answers["app"] != answers["MLflow"]:
        raise SystemExit("the app and MLflow answer differently for the same rows: not the same "
                         "model")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--limit-of"]:
        _limit_main(*sys.argv[2:])
    else:
        main()
