"""Starting real processes (servers, workers, a deployment to kill) on the test database."""

from __future__ import annotations

import os
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


def process_env(store_root: Path, broker_dir: Path, **extra) -> dict:
    env = dict(os.environ)
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
