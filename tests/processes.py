"""Starting real processes (servers, workers, a deployment to kill) on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def e2e_redis_url() -> str:
    """REDIS_URL's server, another database number: the e2e processes' own (see
    tests/e2e/conftest.py's broker_dir)."""
    from urllib.parse import urlsplit, urlunsplit

    from django.conf import settings

    if not settings.REDIS_URL:
        return ""
    parts = urlsplit(settings.REDIS_URL)
    number = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{number - 1 if number > 0 else number + 1}"))



def process_env(store_root: Path, broker_dir: Path, **extra) -> dict:
    env = dict(os.environ)
    if e2e_redis_url():
        env["REDIS_URL"] = e2e_redis_url()
    env.update(
        DATABASE_URL=database_url(),
        MODEL_STORE_ROOT=str(store_root),
        CELERY_FILESYSTEM_BROKER_DIR=str(broker_dir),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def reset_connection_pools(app):
    """Drop pooled broker connections so the next publish uses the options set here.

    Celery keeps a connection pool on the app and kombu a registry of producer pools
    keyed by connection; both must go, or the next task (eager ones too) gets a closed pool.
    """
    from kombu import pools

    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


KILL_AT = """
import os, sys, django
django.setup()
from governance import services
point = int(sys.argv[2])
def checkpoint(step):
    if step == point:
        os._exit(137)  # as abrupt as kill -9: no cleanup, no commit
services.deployment_execute(int(sys.argv[1]), checkpoint=checkpoint)
"""


def kill_deployment_at(deployment, point: int, store_root: Path, tmp_path: Path) -> None:
    """Run a deployment in another process and kill it at checkpoint `point` (after the plan:
    -1, after each folder move: 0, 1), leaving it `moving`."""
    result = subprocess.run(
        [sys.executable, "-c", KILL_AT, str(deployment.pk), str(point)],
        cwd=ROOT, env=process_env(store_root, tmp_path / "broker"), capture_output=True,
        text=True, timeout=120,
    )
    assert result.returncode == 137, result.stderr
