"""Degraded, never down, and honest about it: a dead Redis, a tampered or missing artifact,
a symbolic link in the store."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from governance import services as governance
from governance.models import Deployment
from monitoring.models import Alert
from predictions import serving
from registry import reconcile
from registry.models import ModelVersion
from tests import helpers

pytestmark = pytest.mark.django_db(transaction=True)  # alerts are opened on commit
ROWS = {"inputs": [[1.0, 2.0, 3.0]]}
PREDICT = "/api/v1/models/churn_prediction/predict/"
FILE = "production/churn_prediction/v1.0.0/model.joblib"


def _predict(client):
    return client.post(PREDICT, json.dumps(ROWS), content_type="application/json")


def test_predictions_answer_while_redis_is_down_and_the_probe_says_so(
    served, service, settings, caplog
):
    served()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    with caplog.at_level(logging.WARNING, logger="predictions.throttling"):
        response = _predict(service)
    assert response.status_code == 200, response.json()
    assert "quotas are not counted" in caplog.text
    ready = service.get("/v2/health/ready")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert "cache" in ready.json()["degraded"]


@pytest.fixture
def tampered(served, store_root):
    version = served()
    serving.models.clear()  # a process that has not loaded it yet
    path = Path(store_root, FILE)
    original = path.read_bytes()
    path.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:])
    return version, path, original


def test_a_flipped_byte_stops_serving_with_a_503_and_opens_one_critical_alert(
    tampered, service, api, viewer
):
    version, _path, original = tampered
    first = _predict(service)
    assert first.status_code == 503
    assert "model unavailable" in first.json()["detail"]
    assert _predict(service).status_code == 503  # and stays so, from the flag
    version.refresh_from_db()
    assert version.integrity_failed_at is not None
    problem = version.integrity_problem
    assert problem["file"] == "model.joblib"
    assert problem["expected_sha256"] == helpers.sha256(original)
    assert problem["actual_sha256"] not in (None, problem["expected_sha256"])
    alert = Alert.objects.get(rule__metric="integrity")
    assert alert.severity == "critical" and alert.status == "open"
    assert "model.joblib" in alert.title
    assert problem["actual_sha256"] in alert.title
    assert problem["expected_sha256"] in alert.title
    assert api(viewer).get("/v2/models/churn_prediction/ready").json()["ready"] is False
    assert "integrity" in api(viewer).get("/v2/health/ready").json()["degraded"]


def test_a_tampered_file_is_never_downloaded(tampered, api, data_scientist):
    version, _path, _original = tampered
    url = "/api/v1/models/churn_prediction/versions/1.0.0/files/model.joblib"
    response = api(data_scientist).get(url)
    assert response.status_code == 409
    assert response.json()["code"] == "integrity_failed"
    version.refresh_from_db()
    assert version.integrity_failed_at is not None  # the download found it, and said so
    assert Alert.objects.filter(rule__metric="integrity", status="open").count() == 1


def test_a_restored_file_serves_again_and_the_alert_resolves(tampered, service):
    version, path, original = tampered
    assert _predict(service).status_code == 503
    path.write_bytes(original)
    assert governance.integrity_sweep() == [f"{version}: intact again"]
    assert _predict(service).status_code == 200
    assert Alert.objects.get(rule__metric="integrity").status == "resolved"


@pytest.fixture
def linked_folder(served, store_root, tmp_path):
    """The staging folder of 1.0.0 replaced by a symbolic link to a copy elsewhere."""
    version = served("1.0.0", stage="staging")
    folder = Path(store_root, "staging/churn_prediction/v1.0.0")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(folder, elsewhere)
    shutil.rmtree(folder)
    folder.symlink_to(elsewhere, target_is_directory=True)
    return version, folder


def test_a_symlinked_version_folder_is_refused_by_download_deploy_and_reconcile(
    linked_folder, api, data_scientist
):
    version, folder = linked_folder
    download = api(data_scientist).get(
        "/api/v1/models/churn_prediction/versions/1.0.0/files/model.joblib")
    assert download.status_code == 409
    ModelVersion.objects.filter(pk=version.pk).update(integrity_failed_at=None)
    outcome = governance.version_force_stage(version=version, to_stage="production",
                                             actor=helpers.governance_admin(), reason="go")
    assert outcome.deployment.status == "failed"
    assert "symbolic link" in outcome.deployment.error
    assert not Deployment.objects.filter(status="moving").exists()
    assert folder.is_symlink()  # left in place
    findings = reconcile.reconcile(repair=True)
    assert any(f.kind == "symlink" and f.subject == "churn_prediction 1.0.0"
               for f in findings), [f.as_dict() for f in findings]
    assert folder.is_symlink()


def test_a_symlinked_file_in_a_version_folder_is_refused(served, store_root, tmp_path, api,
                                                          data_scientist):
    version = served("1.0.0", stage="staging")
    path = Path(store_root, "staging/churn_prediction/v1.0.0/model.joblib")
    copy = tmp_path / "model.joblib"
    shutil.copy(path, copy)
    path.unlink()
    path.symlink_to(copy)
    download = api(data_scientist).get(
        "/api/v1/models/churn_prediction/versions/1.0.0/files/model.joblib")
    assert download.status_code == 409
    ModelVersion.objects.filter(pk=version.pk).update(integrity_failed_at=None)
    outcome = governance.version_force_stage(version=version, to_stage="production",
                                             actor=helpers.governance_admin(), reason="go")
    assert outcome.deployment.status == "failed"
    assert "model.joblib is a symbolic link" in outcome.deployment.error
