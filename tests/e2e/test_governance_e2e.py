"""Validation and deployment in a real Celery worker, driven over HTTP by a real server.

On SQLite the broker is kombu's file-system transport; with REDIS_URL it is the real Redis.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests import helpers

# One xdist worker runs every e2e test: they share the broker (Redis) and real processes.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _wait(fetch, predicate, timeout=600):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = fetch()
        if predicate(value):
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out; last value: {value}")


def _session(url, username):
    session = requests.Session()
    token = session.post(f"{url}/api/v1/auth/token/",
                         json={"username": username, "password": helpers.PASSWORD})
    assert token.status_code == 200, token.text
    session.headers["Authorization"] = f"Bearer {token.json()['access']}"
    return session


def test_a_version_is_validated_approved_and_deployed_by_the_worker(
    live_app, celery_worker, data_scientist, approver, churn_model, store_root
):
    dana, april = _session(live_app, "dana"), _session(live_app, "april")
    base = f"{live_app}/api/v1/models/churn_prediction/versions"

    def register(version, accuracy):
        response = dana.post(f"{base}/", data={
            "version": version, "framework": "sklearn",
            "metadata": json.dumps(helpers.metadata(metrics={"accuracy": accuracy}))},
            files=[("file", ("model.joblib", helpers.sklearn_bytes()))])
        assert response.status_code == 201, response.text

    def latest_run(version):
        return dana.get(f"{base}/{version}/validations/").json()["results"]

    def stage(version):
        return dana.get(f"{base}/{version}/").json()["stage"]

    def promote(version):
        staged = dana.post(f"{base}/{version}/transitions/", json={"to_stage": "staging"})
        assert staged.status_code == 202, staged.text
        _wait(lambda: stage(version), lambda s: s == "staging")
        asked = dana.post(f"{base}/{version}/transitions/",
                          json={"to_stage": "production", "reason": "e2e"})
        assert asked.status_code == 202, asked.text
        request_id = asked.json()["request"]["id"]
        request = _wait(lambda: april.get(f"{live_app}/api/v1/approvals/{request_id}/").json(),
                        lambda r: r["validation"]["status"] not in ("pending", "running"))
        assert request["validation"]["status"] == "passed", request
        approved = april.post(f"{live_app}/api/v1/approvals/{request_id}/approve",
                              json={"comment": "ok"})
        assert approved.status_code == 200, approved.text
        _wait(lambda: stage(version), lambda s: s == "production")

    def validated(version):
        runs = _wait(lambda: latest_run(version),
                     lambda r: r and r[0]["status"] not in ("pending", "running"))
        assert runs[0]["status"] == "passed", runs[0]["checks"]

    register("1.0.0", 0.80)
    validated("1.0.0")
    promote("1.0.0")
    register("1.1.0", 0.81)
    validated("1.1.0")
    promote("1.1.0")

    assert stage("1.0.0") == "archived"
    root = Path(store_root)
    assert (root / "production/churn_prediction/v1.1.0/model.joblib").exists()
    retired = json.loads((root / "archived/churn_prediction/v1.0.0/metadata.json").read_text())
    assert retired["replaced_by"] == "1.1.0"
    deployments = dana.get(f"{live_app}/api/v1/deployments/?model=churn_prediction").json()
    assert {d["status"] for d in deployments["results"]} == {"completed"}
