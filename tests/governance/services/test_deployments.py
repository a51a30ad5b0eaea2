"""Deployments survive a killed worker, and racing promotions end consistent."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from governance import services
from governance.models import Deployment
from governance.services import reconcile
from registry import load_model
from registry.models import ModelVersion
from tests import helpers
from tests.processes import kill_deployment_at

pytestmark = pytest.mark.django_db(transaction=True)

def _pending_promotion(validated, admin_user):
    """1.0.0 in production, 1.1.0 staged, a deployment of 1.1.0 recorded but not run."""
    validated("1.0.0", stage="production", metrics={"accuracy": 0.8})
    candidate = validated("1.1.0", stage="staging", metrics={"accuracy": 0.85})
    return _recorded(candidate, admin_user)


def _recorded(version, actor) -> Deployment:
    """A deployment as the approval step records it, before any worker picks it up."""
    return Deployment.objects.create(
        model=version.model, version=version, from_stage=version.stage,
        to_stage="production", kind="forced", requested_by=actor, deployed_by=actor,
        reason="test")


def _files_intact(store_root):
    for version in ModelVersion.objects.prefetch_related("files"):
        folder = Path(store_root) / {"production": "production", "archived": "archived",
                                     "staging": "staging", "experiment": "experiments"}[
            version.stage] / "churn_prediction" / f"v{version.version}"
        for artifact in version.files.all():
            assert helpers.sha256((folder / artifact.filename).read_bytes()) == artifact.sha256


@pytest.mark.parametrize("point", [-1, 0, 1], ids=["after-plan", "between-moves",
                                                    "after-moves"])
def test_reconcile_finishes_a_deployment_killed_mid_way(validated, admin_user, store_root,
                                                        tmp_path, point):
    deployment = _pending_promotion(validated, admin_user)
    kill_deployment_at(deployment, point, store_root, tmp_path)
    deployment.refresh_from_db()
    assert deployment.status == "moving"
    # The rows have not changed yet; the production model still loads from wherever it is.
    assert load_model("churn_prediction", stage="production").version == "1.0.0"

    findings = reconcile()
    assert [(f.kind, f.repaired) for f in findings] == [("interrupted_deployment", True)]
    deployment.refresh_from_db()
    assert deployment.status == "completed"
    stages = dict(ModelVersion.objects.values_list("version", "stage"))
    assert stages == {"1.0.0": "archived", "1.1.0": "production"}
    assert ModelVersion.objects.filter(stage="production").count() == 1
    _files_intact(store_root)
    assert reconcile() == []  # folders and rows agree
    archived = json.loads(
        (Path(store_root) / "archived/churn_prediction/v1.0.0/metadata.json").read_text())
    assert archived["replaced_by"] == "1.1.0"


def test_reconcile_leaves_alone_a_folder_that_a_live_deployment_is_moving(
    validated, admin_user, store_root, tmp_path
):
    from registry import reconcile as registry_reconcile

    deployment = _pending_promotion(validated, admin_user)
    kill_deployment_at(deployment, 0, store_root, tmp_path)  # 1.0.0 archived, 1.1.0 not yet
    # As if the deployment started just after reconcile's own recovery had run: the registry's
    # comparison alone sees the versions marked as moving.
    findings = registry_reconcile.reconcile()
    assert [(f.kind, f.subject, f.repaired) for f in findings] == [
        ("move_in_progress", "churn_prediction 1.0.0", False)]
    assert (Path(store_root) / "archived/churn_prediction/v1.0.0").is_dir()  # not moved back

    assert services.deployment_recover(older_than_seconds=0)[0].status == "completed"
    assert dict(ModelVersion.objects.values_list("version", "stage")) == {
        "1.0.0": "archived", "1.1.0": "production"}
    assert reconcile() == []
    _files_intact(store_root)


def test_a_deployment_that_cannot_finish_is_undone(validated, admin_user, store_root, tmp_path):
    deployment = _pending_promotion(validated, admin_user)
    kill_deployment_at(deployment, 0, store_root, tmp_path)
    # The candidate's folder is gone before anyone recovers: the move cannot be completed.
    candidate = Path(store_root) / "staging/churn_prediction/v1.1.0"
    hidden = Path(store_root).parent / "hidden-v1.1.0"
    candidate.rename(hidden)

    with pytest.raises(SystemExit):
        call_command("reconcile")  # reports what it could not repair, exits 1
    deployment.refresh_from_db()
    assert deployment.status == "failed"
    assert "is missing" in deployment.error
    # Undone: the old production version is back in production/, nothing else moved.
    assert (Path(store_root) / "production/churn_prediction/v1.0.0/model.joblib").exists()
    assert dict(ModelVersion.objects.values_list("version", "stage")) == {
        "1.0.0": "production", "1.1.0": "staging"}
    hidden.rename(candidate)
    assert reconcile() == []


def test_a_deployment_waits_while_another_of_the_model_is_moving(validated, admin_user,
                                                                 store_root, tmp_path):
    first = _pending_promotion(validated, admin_user)
    kill_deployment_at(first, 0, store_root, tmp_path)  # leaves it `moving`
    third = validated("1.2.0", stage="staging", metrics={"accuracy": 0.9})
    second = _recorded(third, admin_user)
    assert services.deployment_execute(second.pk).status == "pending"
    handled = services.deployment_recover()
    assert [d.status for d in handled] == ["completed", "completed"]
    stages = dict(ModelVersion.objects.values_list("version", "stage"))
    assert stages == {"1.0.0": "archived", "1.1.0": "archived", "1.2.0": "production"}
    second_done = Deployment.objects.get(pk=second.pk)
    assert second_done.replaced.version == "1.1.0"


def test_racing_promotions_end_with_one_production_version_and_one_history(
    validated, admin_user, store_root
):
    validated("1.0.0", stage="production")
    candidates = [validated(v, stage="staging") for v in ("1.1.0", "1.2.0", "1.3.0")]
    deployments = [_recorded(v, admin_user) for v in candidates]
    barrier = threading.Barrier(len(deployments))
    errors = []

    def run(deployment):
        try:
            barrier.wait()
            deadline = time.monotonic() + 60
            # Like the Celery task: while another production change is moving, try again.
            while services.deployment_execute(deployment.pk).status == "pending":
                assert time.monotonic() < deadline, "waited a minute for the other deployments"
                time.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(d,)) for d in deployments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    done = list(Deployment.objects.filter(pk__in=[d.pk for d in deployments])
                .order_by("completed_at", "pk"))
    assert [d.status for d in done] == ["completed"] * 3
    assert ModelVersion.objects.filter(stage="production").count() == 1
    # One history: each deployment replaced the version the one before it put in production.
    assert done[0].replaced.version == "1.0.0"
    assert done[1].replaced_id == done[0].version_id
    assert done[2].replaced_id == done[1].version_id
    assert ModelVersion.objects.get(stage="production") == done[2].version
    _files_intact(store_root)
    assert reconcile() == []


def test_a_flagged_version_is_not_deployed(validated):
    version = validated("1.0.0", stage="staging")
    ModelVersion.objects.filter(pk=version.pk).update(
        integrity_failed_at=version.created_at, integrity_problem={"file": "model.joblib"})
    outcome = services.version_force_stage(version=version, to_stage="production",
                                           actor=helpers.governance_admin(), reason="go")
    assert outcome.deployment.status == "failed"
    assert "sha256" in outcome.deployment.error
    version.refresh_from_db()
    assert version.stage == "staging"
