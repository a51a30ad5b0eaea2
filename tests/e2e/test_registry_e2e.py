"""The registry through real processes: gunicorn serving the API, a Celery worker on the
configured broker (kombu's file-system transport by default, Redis when REDIS_URL is set)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
import requests

from tests import helpers

# One xdist worker runs every e2e test: they share the broker (Redis) and real processes.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _wait_for(predicate, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_register_download_and_the_worker_rewrites_the_catalogue(
    live_app, celery_worker, data_scientist, churn_model, store_root
):
    session = requests.Session()
    token = session.post(f"{live_app}/api/v1/auth/token/",
                         json={"username": "dana", "password": helpers.PASSWORD}).json()["access"]
    session.headers["Authorization"] = f"Bearer {token}"

    model_bytes = helpers.sklearn_bytes()
    response = session.post(
        f"{live_app}/api/v1/models/churn_prediction/versions/",
        data={"version": "1.0.0", "framework": "sklearn",
              "metadata": json.dumps(helpers.metadata()),
              "sha256": hashlib.sha256(model_bytes).hexdigest()},
        files=[("file", ("model.joblib", model_bytes))],
    )
    assert response.status_code == 201, response.text

    download = session.get(response.json()["files"][0]["download_url"])
    assert download.status_code == 200
    assert download.content == model_bytes
    assert download.headers["X-Checksum-SHA256"] == hashlib.sha256(model_bytes).hexdigest()

    catalogue = Path(store_root) / "metadata" / "model_registry.json"

    def listed():
        if not catalogue.exists():
            return False
        return "1.0.0" in json.loads(catalogue.read_text())["models"].get(
            "churn_prediction", {}).get("versions", {})

    assert _wait_for(listed), "the worker did not rewrite the catalogue"

    health = session.get(f"{live_app}/health/?format=json")
    assert health.status_code == 200, health.text
