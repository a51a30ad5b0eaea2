"""The deployments API: who asked, who approved, who deployed, at a cost that does not grow
with the page."""

from __future__ import annotations

import pytest

from governance.models import Approval, ApprovalRequest, Deployment
from tests import helpers

pytestmark = pytest.mark.django_db


def test_the_deployment_list_costs_the_same_queries_for_one_row_or_five(
    api, viewer, data_scientist, approver, second_approver
):
    def approved_deployment(name):
        # Rows as an approved promotion leaves them (the services' own tests cover how).
        helpers.create_model(owner=data_scientist, name=name)
        version = helpers.register_direct(name, "1.0.0", actor=data_scientist)
        request = ApprovalRequest.objects.create(
            version=version, from_stage="staging", to_stage="production",
            requested_by=data_scientist, approvals_required=2, status="approved")
        for person in (approver, second_approver):
            Approval.objects.create(request=request, approver=person, decision="approve",
                                    comment=f"{person.username} agrees")
        Deployment.objects.create(
            model=version.model, version=version, from_stage="staging", to_stage="production",
            kind="promotion", requested_by=data_scientist, deployed_by=second_approver,
            request=request, status="completed")

    client = api(viewer)
    counts = []
    for total in (1, 5):
        while Deployment.objects.count() < total:
            approved_deployment(f"model_{Deployment.objects.count()}")
        with helpers.QueryCount() as queries:
            body = client.get("/api/v1/deployments/").json()
        assert body["count"] == total
        assert {(d["requested_by"], tuple(a["by"] for a in d["approved_by"]), d["deployed_by"])
                for d in body["results"]} == {("dana", ("april", "bea"), "bea")}
        counts.append(len(queries))
    assert counts[0] == counts[1] > 0, counts
