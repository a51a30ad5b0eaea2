"""What every benchmark needs: a scratch database and store, Django set up, figures printed."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MB = 1024 * 1024


def percentile(values, q):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def report(label, seconds, extra=""):
    p50, p99 = percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000
    rate = len(seconds) / sum(seconds)
    print(f"{label:38} n={len(seconds):4}  p50 {p50:9.2f} ms  p99 {p99:9.2f} ms  "
          f"{rate:9.1f} ops/s {extra}")
    return {"label": label, "n": len(seconds), "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
            "ops_per_s": round(rate, 2)}


def scratch_django(name: str) -> tuple[Path, dict]:
    """Point Django at a new SQLite file (or a recreated PostgreSQL database) and a new store.

    With DATABASE_URL set, that database is DROPPED and recreated: give it a scratch name.
    Returns the scratch folder and the environment for child processes.
    """
    scratch = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{scratch / 'bench.sqlite3'}")
    env.update(MODEL_STORE_ROOT=str(scratch / "models"), APP_VAR_DIR=str(scratch / "var"),
               DJANGO_SETTINGS_MODULE="config.settings", LOG_LEVEL="WARNING",
               MODEL_MAX_UPLOAD_BYTES=str(1024 * MB))
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        _recreate_postgres_database(connection)
    call_command("migrate", "--noinput", verbosity=0)
    return scratch, env


def remove(scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)


def _recreate_postgres_database(connection):
    import psycopg

    name = connection.settings_dict["NAME"]
    params = {k: v for k, v in {
        "host": connection.settings_dict.get("HOST"), "port": connection.settings_dict.get("PORT"),
        "user": connection.settings_dict.get("USER"),
        "password": connection.settings_dict.get("PASSWORD"),
    }.items() if v}
    connection.close()
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def save(name: str, vendor: str, results) -> None:
    import json

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}-{vendor}.json").write_text(json.dumps(results, indent=2))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(port: int, *, settle: float = 0.0) -> None:
    """Until something accepts connections on 127.0.0.1:port; then `settle` seconds more
    (e.g. for every worker to finish preloading)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                time.sleep(settle)
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def require_free_port(port: int, what: str) -> int:
    """`port` on 127.0.0.1, or a clear exit naming who wanted it when something listens there."""
    with socket.socket() as sock:
        # as the servers do: connections of a previous run in TIME_WAIT do not count
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SystemExit(f"port {port} on 127.0.0.1 (for {what}) is taken ({exc.strerror}): "
                             "stop what listens there or choose another port") from None
    return port


class Processes:
    """Servers this benchmark starts, each in its own session so that its workers go with it:
    stopped (SIGTERM to the group, SIGKILL after a grace period) at exit, on Ctrl-C and on
    SIGTERM, newest first."""

    def __init__(self):
        import atexit
        import signal

        self.children: list[tuple[str, object]] = []
        atexit.register(self.stop_all)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    def start(self, name: str, argv: list[str], *, log: Path, **kwargs):
        import subprocess

        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, **kwargs)
        proc.log = log
        self.children.append((name, proc))
        return proc

    def stop(self, proc, grace: float = 15) -> None:
        import signal
        import subprocess

        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        # its workers may outlive a leader that exited first
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_all(self) -> None:
        while self.children:
            _name, proc = self.children.pop()
            self.stop(proc)

    def _on_signal(self, signum, _frame):
        self.stop_all()
        raise SystemExit(128 + signum)


def wait_http(port: int, path: str, proc, *, what: str, timeout: float = 120,
              ok=(200,)) -> None:
    """Until GET path answers one of `ok` on 127.0.0.1:port; a clear exit, with the end of its
    log, if the process dies or the time runs out."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = proc.log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"{what} exited with {proc.returncode}; end of {proc.log}:\n{tail}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            status = connection.getresponse().status
            connection.close()
            if status in ok:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not answer GET {path} on port {port} within {timeout:.0f} s "
                     f"(log: {proc.log})")


def load_line() -> str:
    """`uptime`'s load averages, for the figures' context."""
    with open("/proc/loadavg") as fh:
        one, five, fifteen = fh.read().split()[:3]
    return f"load average {one}, {five}, {fifteen} ({os.cpu_count()} cores)"
