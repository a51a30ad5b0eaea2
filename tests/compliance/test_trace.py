"""A prediction's trace: from one request id to the approver, the comment, the file's sha256
and everything between, in the API, its PDF and the admin page."""

from __future__ import annotations

import io

import pypdf
import pytest

from compliance.trace import prediction_trace
from core import roles
from registry.models import Team
from tests.compliance.conftest import APPROVAL_COMMENT, ROWS
from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db(transaction=True)  # registration validates on commit


def _trace_url(request_id: str) -> str:
    return f"/api/v1/predictions/{request_id}/trace"


def _pdf_text(content: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_a_trace_names_the_approver_their_comment_and_the_sha256_of_the_file_that_answered(
        api, viewer, traced):
    chain = traced()
    with Unchanged(allow_actions=()):  # a read: not even an audit event
        response = api(viewer).get(_trace_url(chain["request_id"]))
    assert response.status_code == 200, response.json()
    body = response.json()

    request = body["request"]
    assert (request["route"], request["caller"]["username"], request["n_rows"]) == (
        "production", "dana", 2)
    assert [row["inputs"] for row in request["rows"]] == ROWS
    assert [row["row"] for row in request["rows"]] == [0, 1]
    assert [row["output"] for row in request["rows"]] == chain["predictions"]
    assert not request["inputs_sampled_away"]

    version = body["version"]
    assert (version["model"], version["version"]) == ("churn_prediction", "1.0.0")
    answered = [f for f in version["files"] if f["answered"]]
    assert [(f["filename"], f["sha256"]) for f in answered] == [("model.joblib", chain["sha256"])]
    assert version["integrity"]["state"] == "intact"
    assert version["integrity"]["rehashed_now"] is False

    deployment = body["deployment"]
    assert (deployment["from_stage"], deployment["to_stage"]) == ("staging", "production")
    assert deployment["requested_by"]["username"] == "dana"
    assert deployment["deployed_by"]["username"] == "april"
    assert deployment["approval_request"]["id"] == chain["request"].pk
    assert [(d["approver"]["username"], d["decision"], d["comment"])
            for d in deployment["decisions"]] == [("april", "approve", APPROVAL_COMMENT)]
    assert deployment["admin_url"] == f"/admin/governance/deployment/{deployment['id']}/change/"

    validation = body["validation"]
    assert validation["id"] == chain["request"].validation_run_id
    assert validation["status"] == "passed"
    assert {"name": "checksum", "status": "passed",
            "detail": "1 file(s) match their registered sha256"} in validation["checks"]

    assert body["monitoring"] == {"last_run": None, "open_alerts": []}
    actions = [e["action"] for e in body["audit_events"]]
    for action in ("version.registered", "request.created", "request.approval_given",
                   "deployment.completed"):
        assert action in actions
    assert all(e["admin_url"].startswith("/admin/core/auditevent/") for e in body["audit_events"])


def test_a_sampled_away_log_still_resolves_the_version_and_its_approvals(api, viewer, traced):
    chain = traced(sample_rate=0.0)
    body = api(viewer).get(_trace_url(chain["request_id"])).json()
    request = body["request"]
    assert request["inputs_sampled_away"] is True
    assert (request["rows"], request["rows_logged"], request["n_rows"]) == ([], 0, 2)
    assert "sampled away" in request["sampling"]
    assert (body["version"]["model"], body["version"]["version"]) == ("churn_prediction",
                                                                      "1.0.0")
    assert [(d["approver"]["username"], d["comment"])
            for d in body["deployment"]["decisions"]] == [("april", APPROVAL_COMMENT)]
    assert body["validation"]["id"] == chain["request"].validation_run_id


def test_an_unknown_request_id_is_a_404_naming_request_id(api, viewer, db):
    with Unchanged(allow_actions=()):
        response = api(viewer).get(_trace_url("0123456789abcdef0123456789abcdef"))
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert list(body["errors"]) == ["request_id"]
    assert "0123456789abcdef0123456789abcdef" in body["detail"]


def test_outsiders_and_service_accounts_get_the_404_of_an_unknown_request_and_nothing_is_written(
        api, traced, outsider, other_data_scientist, churn_model, django_user_model):
    from tests.conftest import _person

    chain = traced()
    # sam works for another team; the service account may even read the model's files.
    Team.objects.create(name="risk").members.add(other_data_scientist)
    service = _person(django_user_model, "loans-service", roles.SERVICE)
    churn_model.readers.add(service)
    unknown = api(other_data_scientist).get(_trace_url("f" * 32)).json()
    for person in (outsider, other_data_scientist, service):
        with Unchanged(allow_actions=()):
            response = api(person).get(_trace_url(chain["request_id"]))
            pdf = api(person).get(_trace_url(chain["request_id"]) + "?output=pdf")
        assert (response.status_code, pdf.status_code) == (404, 404), person.username
        assert response.json()["errors"] == {"request_id": [
            unknown["errors"]["request_id"][0].replace("f" * 32, chain["request_id"])]}
        with pytest.raises(Exception, match="no prediction with request id"):
            prediction_trace(request_id=chain["request_id"], user=person)


def test_the_data_scientists_of_the_team_may_trace_their_predictions(api, data_scientist,
                                                                    traced):
    chain = traced()
    assert api(data_scientist).get(_trace_url(chain["request_id"])).status_code == 200


def test_the_pdf_holds_the_approver_the_comment_and_the_sha256(api, viewer, traced):
    chain = traced()
    response = api(viewer).get(_trace_url(chain["request_id"]) + "?output=pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="trace-{chain["request_id"]}.pdf"' in response["Content-Disposition"]
    text = _pdf_text(response.content)
    assert "april" in text
    assert " ".join(APPROVAL_COMMENT.split()) in " ".join(text.split())
    # A sha256 wraps at the column's edge: its halves are on two lines.
    assert chain["sha256"] in "".join(text.split())
    assert chain["request_id"] in "".join(text.split())
    assert "Page 1 of" in text


def test_an_unknown_output_is_refused(api, viewer, traced):
    chain = traced()
    response = api(viewer).get(_trace_url(chain["request_id"]) + "?output=xml")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["output"]


def test_a_trace_costs_a_fixed_number_of_queries(viewer, traced,
                                                 django_assert_max_num_queries):
    chain = traced()
    with django_assert_max_num_queries(20):
        trace = prediction_trace(request_id=chain["request_id"], user=viewer)
    assert trace["deployment"]["decisions"]


def test_the_admin_page_shows_cora_the_same_chain_and_its_pdf(client, cora, traced):
    chain = traced()
    client.force_login(cora)
    page = client.get("/admin/predictions/predictionlog/trace/",
                      {"request_id": chain["request_id"]})
    assert page.status_code == 200
    html = page.content.decode()
    for expected in ("april", APPROVAL_COMMENT, chain["sha256"], "Download PDF",
                     f'/admin/governance/deployment/{chain["request"].deployment.pk}/change/',
                     f'/admin/governance/approvalrequest/{chain["request"].pk}/change/'):
        assert expected in html, expected

    pdf = client.get("/admin/predictions/predictionlog/trace/",
                     {"request_id": chain["request_id"], "output": "pdf"})
    assert pdf["Content-Type"] == "application/pdf"
    assert chain["sha256"] in "".join(_pdf_text(pdf.content).split())


def test_the_admin_page_tells_an_unknown_id_without_an_error_page(client, cora, db):
    client.force_login(cora)
    page = client.get("/admin/predictions/predictionlog/trace/", {"request_id": "nope-nope"})
    assert page.status_code == 200
    assert "No prediction with request id &#x27;nope-nope&#x27;" in page.content.decode()


def test_approvers_reach_the_trace_from_the_home_page_and_from_each_log_row(client, approver,
                                                                            traced):
    chain = traced()
    client.force_login(approver)
    home = client.get("/admin/").content.decode()
    assert 'href="/admin/predictions/predictionlog/trace/"' in home
    logs = client.get("/admin/predictions/predictionlog/").content.decode()
    assert f'/admin/predictions/predictionlog/trace/?request_id={chain["request_id"]}' in logs
    page = client.get(f"/admin/predictions/predictionlog/trace/?request_id={chain['request_id']}")
    assert APPROVAL_COMMENT in page.content.decode()


def test_data_scientists_who_may_not_read_the_logs_in_the_admin_do_not_get_the_page(
        client, data_scientist, django_user_model):
    data_scientist.is_staff = True
    data_scientist.save(update_fields=["is_staff"])
    client.force_login(data_scientist)
    assert 'predictionlog/trace/' not in client.get("/admin/").content.decode()
    response = client.get("/admin/predictions/predictionlog/trace/")
    assert response.status_code == 302


def test_the_trace_is_in_the_openapi_schema(api, viewer, db):
    import yaml

    schema = yaml.safe_load(api(viewer).get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/predictions/{request_id}/trace"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json",
                                                             "application/pdf"}
    assert operation["responses"]["404"]


def test_without_pango_the_admin_trace_pdf_says_so_and_still_shows_the_page(client, cora,
                                                                              traced,
                                                                              pango_missing):
    chain = traced()
    client.force_login(cora)
    response = client.get("/admin/predictions/predictionlog/trace/",
                          {"request_id": chain["request_id"], "output": "pdf"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "libpango-1.0-0" in html and chain["sha256"] in html
