"""Real processes: a Celery worker on the configured broker, a gunicorn server.

Both use the test database (a file on SQLite, the test database on PostgreSQL) and the
test's own store, so what they do is visible to the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.governance.conftest import (  # noqa: F401  (fixtures)
    policy,
    promotion,
    validated,
)
from tests.monitoring.conftest import receiver  # noqa: F401  (a fixture)
from tests.processes import ROOT, e2e_redis_url, process_env, reset_connection_pools

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture
def browser():
    """Headless Chromium (Debian's package; Playwright's own download does not work here)."""
    if not os.path.exists(CHROMIUM):
        message = ("Chromium is not installed (apt-get install chromium, or set "
                   "CHROMIUM_PATH); the browser test needs it")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def broker_dir(tmp_path, celery_eager, settings):
    """A private broker for this test; the test process publishes to it for real."""
    app = celery_eager
    app.conf.task_always_eager = False
    directory = tmp_path / "broker"
    if not settings.REDIS_URL:
        options = {
            "data_folder_in": str(directory / "queue"),
            "data_folder_out": str(directory / "queue"),
            "control_folder": str(directory / "control"),
            "store_processed": False,
        }
        app.conf.broker_transport_options = options
        for key in ("data_folder_in", "control_folder"):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
    else:
        # The real processes get a Redis database of their own (broker and cache): the other
        # xdist worker's tests share REDIS_URL's, and nothing of theirs may reach this test's
        # worker or server. Only e2e tests use it (one xdist worker runs them all, in turn),
        # so it is emptied first: a stale message of an earlier test or run goes too.
        import redis

        url = e2e_redis_url()
        redis.Redis.from_url(url).flushdb()
        app.conf.broker_url = url
        settings.CACHES = {**settings.CACHES,
                           "default": {**settings.CACHES["default"], "LOCATION": url}}
    reset_connection_pools(app)
    yield directory
    app.conf.broker_url = settings.CELERY_BROKER_URL
    reset_connection_pools(app)


@pytest.fixture(autouse=True)
def fast_password_hashing():
    """Servers started here hash with the default hashers, so the tests must too."""


@contextmanager
def worker(store_root, broker_dir, tmp_path, *options, **env):
    """A Celery worker (solo pool) on the test's database, store and broker, ready."""
    log_path = tmp_path / "worker.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", f"e2e-{uuid.uuid4().hex[:8]}@%h", *options],
        cwd=ROOT, env=process_env(store_root, broker_dir, **env), stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 600
    while "ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the Celery worker did not start:\n" + log_path.read_text())
        time.sleep(0.2)
    try:
        yield process, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def celery_worker(transactional_db, store_root, broker_dir, tmp_path):
    with worker(store_root, broker_dir, tmp_path) as (process, _log):
        yield process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(store_root, broker_dir, tmp_path, **env):
    """The app under gunicorn on 127.0.0.1 (production-style): (url, log path)."""
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=ROOT, env=process_env(store_root, broker_dir, **env), stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 600
    while True:
        try:
            # The first request of a worker imports the app: slow on a busy machine.
            if requests.get(url + "/health/?format=json", timeout=15).status_code in (200, 500):
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("gunicorn did not start:\n" + log_path.read_text())
        time.sleep(0.2)
    try:
        yield url, log_path
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture
def live_app(transactional_db, store_root, broker_dir, tmp_path):
    """The app under gunicorn on 127.0.0.1 (production-style), with the test's database."""
    with gunicorn(store_root, broker_dir, tmp_path) as (url, _log):
        yield url
