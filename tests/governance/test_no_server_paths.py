"""No server paths in responses: validation details, errors and admin pages never show where
the project, its var/ folder or the store live on the server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from governance import services
from governance.selectors import latest_validation
from tests import helpers

pytestmark = pytest.mark.django_db(transaction=True)


def _leaks(text: str, *extra) -> list[str]:
    roots = [str(settings.BASE_DIR), str(settings.VAR_DIR), str(settings.MODEL_STORE_ROOT),
             *map(str, extra)]
    return [root for root in roots if root in text]


def test_a_crashed_validation_names_no_server_path(api, client, data_scientist, admin_user,
                                                   churn_model, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the sandbox folder should be")
    settings.VALIDATION_SANDBOX_DIR = blocker  # making the sandbox folder fails, with its path
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    run = latest_validation(version)
    assert run.status == "failed"
    details = json.dumps([[c.name, c.detail] for c in run.checks.all()]) + run.summary
    assert "crashed" in details
    body = api(data_scientist).get(
        "/api/v1/models/churn_prediction/versions/1.0.0/validations/").content.decode()
    client.force_login(admin_user)
    page = client.get(f"/admin/governance/validationrun/{run.pk}/change/").content.decode()
    for text in (details, body, page):
        assert not _leaks(text, tmp_path), text[:2000]


def test_a_failed_deployment_names_no_server_path(api, data_scientist, churn_model,
                                                  store_root, tmp_path):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    helpers.force_stage(version, "staging")
    folder = Path(store_root, "staging/churn_prediction/v1.0.0")
    shutil.copytree(folder, tmp_path / "copy")
    shutil.rmtree(folder)
    folder.symlink_to(tmp_path / "copy", target_is_directory=True)
    outcome = services.version_force_stage(version=version, to_stage="archived",
                                           actor=helpers.governance_admin(), reason="tidy")
    assert outcome.deployment.status == "failed"
    body = api(data_scientist).get(
        f"/api/v1/deployments/{outcome.deployment.pk}/").content.decode()
    for text in (outcome.deployment.error, body):
        assert not _leaks(text, tmp_path), text
    assert "symbolic link" in outcome.deployment.error


def test_error_bodies_lose_absolute_paths():
    from core.errors import error_body

    leaked = f"cannot open {settings.MODEL_STORE_ROOT}/staging/x/v1/model.joblib"
    body = error_body(409, "conflict", leaked, {"file": [f"{settings.VAR_DIR}/secret_key"]})
    assert not _leaks(json.dumps(body))
    assert "<store>/staging/x/v1/model.joblib" in body["detail"]
