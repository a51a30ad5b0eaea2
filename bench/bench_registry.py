"""Registry benchmarks through a real server process.

Starts gunicorn on 127.0.0.1 against a scratch database and store, then prints p50/p99 latency
and ops/s for: create model, create-version (1 KB, 1 MB and 100 MB model files), transition
(experiment -> staging: queues the move), tag (PATCH a version's tags), get-version,
list-versions (a page of 50 and a page of 500 among 10,000 versions), and download (1 MB and
100 MB); and the upload throughput of the 100 MB registration against a plain `cp` of the same
file on the same file system. The operations MLflow also has are compared with MLflow's p50
from issue 14's table (bench_peers.py measures MLflow itself, side by side).

    .venv/bin/python bench/bench_registry.py                 # SQLite, file-system broker
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_registry \\
    REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/bench_registry.py

Options: --quick (fewer repetitions), --workers N (gunicorn workers, default 2),
--no-large (skip the 100 MB upload, download and `cp`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import (  # noqa: E402
    MB,
    ROOT,
    free_port,
    remove,
    report,
    save,
    scratch_django,
    wait_until_up,
)

# MLflow 3.17.2 `server --workers 1`, p50 in ms, from issue 14's table (same machine).
MLFLOW_P50_MS = {"create model": 5.8, "create-version, 1 KB file": 10.8,
                 "transition (queues the move)": 7.3, "get-version": 6.5,
                 "list-versions, page of 500 in 10,000": 35.0}


class Client:
    """One keep-alive HTTP/1.1 connection, with a streaming multipart upload."""

    def __init__(self, port, token):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path):
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        size = 0
        while chunk := response.read(MB):
            size += len(chunk)
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
        return size

    def send_json(self, method, path, payload, expected):
        body = json.dumps(payload).encode()
        self.connection.request(method, path, body=body, headers={
            **self.headers, "Content-Type": "application/json"})
        response = self.connection.getresponse()
        answer = response.read()
        if response.status != expected:
            raise RuntimeError(f"{method} {path}: {response.status} {answer[:300]!r}")

    def register(self, model, version, file_path: Path):
        boundary = uuid.uuid4().hex
        fields = {"version": version, "framework": "sklearn",
                  "metadata": json.dumps({"metrics": {"accuracy": 0.8}})}
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="model.joblib"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        length = len(head) + file_path.stat().st_size + len(tail)

        def body():
            yield head
            with open(file_path, "rb") as fh:
                while chunk := fh.read(MB):
                    yield chunk
            yield tail

        headers = {**self.headers, "Content-Type": f"multipart/form-data; boundary={boundary}",
                   "Content-Length": str(length)}
        self.connection.request("POST", f"/api/v1/models/{model}/versions/", body=body(),
                                headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 201:
            raise RuntimeError(f"register {version}: {response.status} {payload[:300]!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-large", action="store_true")
    args = parser.parse_args()
    repeat = 0.2 if args.quick else 1.0

    scratch, env = scratch_django("bench-registry")
    from django.db import connection

    token, model_name = _prepare(connection)

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(args.workers), "--threads", "4",
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    results = []
    try:
        wait_until_up(port)
        client = Client(port, token)
        one_kb = scratch / "one_kb.bin"
        one_kb.write_bytes(os.urandom(1024))
        one_mb = scratch / "one_mb.bin"
        one_mb.write_bytes(os.urandom(MB))
        big = scratch / "hundred_mb.bin"
        with open(big, "wb") as fh:
            for _ in range(0 if args.no_large else 100):
                fh.write(os.urandom(MB))
        print(f"database: {connection.vendor}; broker: "
              f"{'redis' if env.get('REDIS_URL') else 'filesystem'}; gunicorn workers: "
              f"{args.workers} x 4 threads; python {sys.version.split()[0]}")

        for index in range(2):  # warm-up: the first requests of a worker import and connect
            client.register("bench_uploads", f"0.0.{index}", one_mb)
            client.get(f"/api/v1/models/{model_name}/versions/?page_size=50")
        timings = []
        for index in range(max(20, int(200 * repeat))):
            started = time.perf_counter()
            client.send_json("POST", "/api/v1/models/", {
                "name": f"created_{index}", "task_type": "classification"}, 201)
            timings.append(time.perf_counter() - started)
        results.append(report("create model", timings))

        timings = []
        for index in range(max(20, int(200 * repeat))):
            started = time.perf_counter()
            client.register("bench_uploads", f"0.1.{index}", one_kb)
            timings.append(time.perf_counter() - started)
        results.append(report("create-version, 1 KB file", timings))

        timings = []
        for index in range(max(20, int(200 * repeat))):
            started = time.perf_counter()
            client.send_json("PATCH", "/api/v1/models/bench_uploads/versions/0.1.0/",
                             {"tags": [f"tag{index % 5}", "bench"]}, 200)
            timings.append(time.perf_counter() - started)
        results.append(report("tag (PATCH a version's tags)", timings))

        timings = []
        for index in range(max(20, int(200 * repeat))):
            # Distinct versions of bench_many, each moved once (the worker is not running:
            # the moves stay queued, as MLflow's transition only records one).
            started = time.perf_counter()
            client.send_json("POST", f"/api/v1/models/{model_name}/versions/"
                             f"{_version_text(index)}/transitions/", {"to_stage": "staging"},
                             202)
            timings.append(time.perf_counter() - started)
        results.append(report("transition (queues the move)", timings))

        timings = []
        for index in range(max(5, int(40 * repeat))):
            started = time.perf_counter()
            client.register("bench_uploads", f"1.0.{index}", one_mb)
            timings.append(time.perf_counter() - started)
        results.append(report("create-version, 1 MB file", timings,
                              f"{MB / statistics.median(timings) / MB:8.1f} MB/s"))

        if not args.no_large:
            _large_upload(client, big, scratch, repeat, results, server.pid)

        timings = []
        for _ in range(int(500 * repeat)):
            started = time.perf_counter()
            client.get(f"/api/v1/models/{model_name}/versions/5.0.17/")
            timings.append(time.perf_counter() - started)
        results.append(report("get-version", timings))

        timings = []
        for page in range(1, int(200 * repeat) + 1):
            started = time.perf_counter()
            client.get(f"/api/v1/models/{model_name}/versions/?page_size=50&page={page % 200 + 1}")
            timings.append(time.perf_counter() - started)
        results.append(report("list-versions, page of 50 in 10,000", timings))

        timings = []
        for page in range(max(20, int(100 * repeat))):
            started = time.perf_counter()
            client.get(f"/api/v1/models/{model_name}/versions/?page_size=500&page={page % 20 + 1}")
            timings.append(time.perf_counter() - started)
        results.append(report("list-versions, page of 500 in 10,000", timings))

        timings = []
        for _ in range(int(200 * repeat)):
            started = time.perf_counter()
            client.get("/api/v1/models/bench_uploads/versions/1.0.0/files/model.joblib")
            timings.append(time.perf_counter() - started)
        results.append(report("download, 1 MB", timings,
                              f"{1 / statistics.median(timings):8.1f} MB/s"))

        if not args.no_large:
            timings = []
            for _ in range(max(3, int(10 * repeat))):
                started = time.perf_counter()
                client.get("/api/v1/models/bench_uploads/versions/2.0.0/files/model.joblib")
                timings.append(time.perf_counter() - started)
            results.append(report("download, 100 MB", timings,
                                  f"{100 / statistics.median(timings):8.1f} MB/s"))
        _compare_with_mlflow(results)
    finally:
        server.terminate()
        server.wait(timeout=30)
        remove(scratch)
    save("registry", connection.vendor, results)


def _compare_with_mlflow(results):
    print("\nvs MLflow (issue 14's p50; throughput ratio = MLflow p50 / our mean, aim >= 1.5):")
    for row in results:
        mlflow = MLFLOW_P50_MS.get(row.get("label"))
        if mlflow:
            ours = 1000 / row["ops_per_s"]
            print(f"  {row['label']:38} ours p50 {row['p50_ms']:7.2f} ms, mean {ours:7.2f} ms;"
                  f" MLflow {mlflow:5.1f} ms; ratio {mlflow / ours:5.2f}")


def _version_text(index: int) -> str:
    """The version _prepare gave the index-th row of bench_many."""
    return f"{index // 1000}.{(index // 10) % 100}.{index % 10 + 10}"


def _large_upload(client, big, scratch, repeat, results, server_pid):
    """The 100 MB registration (wall time, the workers' CPU time and peak RSS), and `cp` +
    `sync` of the same file for scale."""
    workers = _workers(server_pid)
    rss_before = _reset_peak_rss(workers)
    cpu_before = _cpu_seconds(workers)
    timings = []
    for index in range(max(3, int(6 * repeat))):
        started = time.perf_counter()
        client.register("bench_uploads", f"2.0.{index}", big)
        timings.append(time.perf_counter() - started)
    upload_rate = 100 / statistics.median(timings)
    results.append(report("create-version, 100 MB file", timings,
                          f"{upload_rate:8.1f} MB/s"))
    # The workers' CPU time per upload: unlike the wall time, it hardly moves with the
    # machine's load (other processes delay a request, they do not add to its CPU time).
    cpu_per_upload = (_cpu_seconds(workers) - cpu_before) / len(timings)
    rss_100 = _peak_rss(workers)
    print(f"{'workers CPU time per 100 MB upload':38} {cpu_per_upload * 1000:9.2f} ms")
    print(f"worker peak RSS (max over workers): after warm-up {rss_before:.0f} MiB, "
          f"during the 100 MB uploads {rss_100:.0f} MiB")
    results.append({"label": "worker CPU ms per 100 MB upload",
                    "value": round(cpu_per_upload * 1000, 1)})
    results.append({"label": "worker peak RSS MiB", "warm": round(rss_before),
                    "upload_100mb": round(rss_100)})

    cp_timings = []
    target_dir = scratch / "models" / "experiments"
    for _ in range(3):
        target = target_dir / "cp-copy.bin"
        started = time.perf_counter()
        subprocess.run(["cp", str(big), str(target)], check=True)
        subprocess.run(["sync", str(target)], check=False)
        cp_timings.append(time.perf_counter() - started)
        target.unlink()
    cp_rate = 100 / statistics.median(cp_timings)
    print(f"{'cp + sync of the same 100 MB file':38} {'':9}  p50 "
          f"{statistics.median(cp_timings) * 1000:9.2f} ms  {'':18}{cp_rate:8.1f} MB/s")
    print(f"upload throughput / cp throughput: {upload_rate / cp_rate:.2f}")
    results.append({"label": "upload/cp ratio", "value": round(upload_rate / cp_rate, 3)})
    return upload_rate


def _workers(server_pid: int) -> list[int]:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _cpu_seconds(pids) -> float:
    """User + system CPU time of the processes (all their threads), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def _peak_rss(pids) -> float:
    """The largest peak resident set (VmHWM) among the processes, in MiB."""
    peaks = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def _reset_peak_rss(pids) -> float:
    """Reset each process's VmHWM to its current RSS (Linux: "5" > clear_refs); the new max."""
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _peak_rss(pids)


def _prepare(connection):
    """A data scientist, a model with 10,000 versions (rows only) and one for uploads."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework_simplejwt.tokens import RefreshToken

    from core import roles
    from registry import services
    from registry.models import ArtifactFile, ModelVersion, RegisteredModel
    from registry.versioning import parse_version

    roles.ensure_groups()
    user = get_user_model().objects.create_user("bench", password=uuid.uuid4().hex)
    user.groups.add(Group.objects.get(name=roles.DATA_SCIENTIST))
    services.model_create(name="bench_uploads", task_type="classification", owner=user,
                          actor=user)
    model = services.model_create(name="bench_many", task_type="classification", owner=user,
                                  actor=user)
    rows = []
    for index in range(10_000):
        parsed = parse_version(f"{index // 1000}.{(index // 10) % 100}.{index % 10 + 10}")
        rows.append(ModelVersion(
            model=model, version=parsed.text, number=index + 1, major=parsed.major,
            minor=parsed.minor, patch=parsed.patch, prerelease="",
            prerelease_key=parsed.prerelease_key, framework="sklearn", created_by=user, algorithm="RandomForestClassifier",
            metrics={"accuracy": 0.8, "f1_score": 0.7}, features=["a", "b", "c"],
        ))
    versions = ModelVersion.objects.bulk_create(rows, batch_size=2000)
    ArtifactFile.objects.bulk_create(
        [ArtifactFile(version=v, role="model", filename="model.joblib", position=0, size=1,
                      sha256="0" * 64) for v in versions],
        batch_size=2000,
    )
    assert RegisteredModel.objects.count() == 2
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would after a bulk load
    connection.close()
    return str(RefreshToken.for_user(user).access_token), model.name


if __name__ == "__main__":
    main()
