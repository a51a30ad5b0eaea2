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
