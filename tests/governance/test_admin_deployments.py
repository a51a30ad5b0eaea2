"""Who asked, who approved, who deployed: the version page, the deployment pages and the
compliance report name april once she approves dana's request."""

from __future__ import annotations

import io
import re
from html import unescape

import pytest
from django.core.management import call_command

from governance.models import Deployment
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db(transaction=True)


def _text(response) -> str:
    """The page's words: inline tags dropped, other tags a space."""
    assert response.status_code == 200
    html = re.sub(r"</?(b|span|a)\b[^>]*>", "", response.content.decode())
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


@pytest.fixture
def approved(client, approver, promotion):
    """april approved dana's request in the admin: 1.1.0 in production, 1.0.0 archived."""
    client.force_login(approver)
    client.post(f"/admin/governance/approvalrequest/{promotion['request_id']}/decide/",
                {"approve": "Approve", "comment": "checked the November data"})
    return Deployment.objects.get(request_id=promotion["request_id"])


def test_the_version_pages_tell_who_requested_approved_and_deployed(client, approved):
    promoted = ModelVersion.objects.get(version="1.1.0")
    text = _text(client.get(f"/admin/registry/modelversion/{promoted.pk}/change/"))
    said = re.search(r"Requested by dana on [\d-]+ [\d:]+; approved by april on [\d-]+ [\d:]+ "
                     r"\(“checked the November data”\); deployed by april on [\d-]+ [\d:]+\.",
                     text)
    assert said, text
    assert re.search(r"production [\d-]+ [\d:]+ dana april april #\d+ Better on November data",
                     text), text  # the history table's last row

    retired = ModelVersion.objects.get(version="1.0.0")
    text = _text(client.get(f"/admin/registry/modelversion/{retired.pk}/change/"))
    assert re.search(r"Retired by april on [\d-]+ [\d:]+, replaced by 1\.1\.0; retirement "
                     r"requested by dana; approved by april on [\d-]+ [\d:]+ "
                     r"\(“checked the November data”\)\. Reason: Better on November data",
                     text), text


def test_the_deployment_pages_name_requester_approver_and_deployer(client, admin_user,
                                                                   approved):
    client.force_login(admin_user)
    listed = _text(client.get("/admin/governance/deployment/?kind=promotion"))
    assert "asked: dana approved: april deployed: april" in listed
    detail = _text(client.get(f"/admin/governance/deployment/{approved.pk}/change/"))
    assert re.search(r"Requested by: dana Approved by: april on [\d-]+ [\d:]+ "
                     r"\(“checked the November data”\) Deployed by: april", detail), detail


def test_the_compliance_report_names_requester_approver_and_deployer(api, viewer, approved,
                                                                     tmp_path):
    row = re.compile(rf"<tr><td>#{approved.pk}<br>.*?</tr>", re.S)
    served = api(viewer).get("/api/v1/audit/report/?model=churn_prediction").content.decode()
    target = tmp_path / "report.html"
    call_command("audit_report", "--model", "churn_prediction", "--output", str(target),
                 stdout=io.StringIO())
    for html in (served, target.read_text()):
        assert "<th>requested by</th><th>approved by</th><th>deployed by</th>" in html
        found = row.search(html).group(0)
        assert '<td class="requested-by">dana</td>' in found
        assert re.search(r'<td class="approved-by">april <span class="muted">[\d-]+ [\d:]+'
                         r"</span>: “checked the November data”</td>", found), found
        assert '<td class="deployed-by">april</td>' in found
