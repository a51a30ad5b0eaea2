"""governance 0017: existing deployments learn who set them off."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from governance.models import Approval, ApprovalRequest, Deployment
from tests import helpers

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("governance", "0016_moving_versions_marked")]


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def test_a_deployment_an_approval_started_is_credited_to_its_last_approver(
    data_scientist, approver, second_approver, admin_user, churn_model
):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    request = ApprovalRequest.objects.create(
        version=version, from_stage="staging", to_stage="production",
        requested_by=data_scientist, approvals_required=2, status="approved")
    for person, decision in ((second_approver, "approve"), (admin_user, "reject"),
                             (approver, "approve")):
        Approval.objects.create(request=request, approver=person, decision=decision)
    try:
        old = _migrate(BEFORE).get_model("governance", "Deployment")
        common = {"model_id": version.model_id, "version_id": version.pk,
                  "from_stage": "staging", "to_stage": "production", "status": "completed"}
        approved = old.objects.create(kind="promotion", requested_by_id=data_scientist.pk,
                                      request_id=request.pk, **common).pk
        forced = old.objects.create(kind="forced", requested_by_id=admin_user.pk, **common).pk
    finally:
        # Back to the latest state (every app's leaf: later migrations add columns).
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    by = dict(Deployment.objects.values_list("pk", "deployed_by__username"))
    assert by == {approved: "april", forced: "ada"}
