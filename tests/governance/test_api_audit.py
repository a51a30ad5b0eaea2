"""The audit trail over the API: filtered lists and reports, and no way to change it."""

from __future__ import annotations

import pytest

from tests import helpers

pytestmark = pytest.mark.django_db


def test_the_audit_list_filters_by_model_actor_action_and_time(api, viewer, data_scientist,
                                                               churn_model):
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    helpers.create_model(owner=data_scientist, name="other")
    client = api(viewer)

    def actions(query):
        response = client.get("/api/v1/audit/" + query)
        assert response.status_code == 200, response.json()
        return [e["action"] for e in response.json()["results"]]

    assert actions("?model=churn_prediction") == ["model.created", "version.registered"]
    assert actions("?model=other") == ["model.created"]
    assert actions("?actor=dana&action=version.registered") == ["version.registered"]
    assert "role.granted" in actions("?action=role.")
    assert actions("?since=2999-01-01T00:00:00Z") == []
    event = client.get("/api/v1/audit/?action=version.registered").json()["results"][0]
    assert event["after"]["version"] == "1.0.0"
    assert len(event["hash"]) == 64 and len(event["prev_hash"]) == 64
    assert client.get("/api/v1/audit/?since=yesterday").status_code == 400


def test_the_audit_trail_cannot_be_changed_through_the_api(api, admin_user, data_scientist,
                                                           churn_model):
    client = api(admin_user)
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/api/v1/audit/", {}, format="json")
        assert response.status_code == 405


def test_the_report_endpoint_serves_html_and_csv(api, viewer, data_scientist, churn_model):
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    html = api(viewer).get("/api/v1/audit/report/?model=churn_prediction")
    assert html.status_code == 200
    assert html["Content-Type"].startswith("text/html")
    assert b"churn_prediction 1.0.0" in html.content
    csv = api(viewer).get("/api/v1/audit/report/?model=churn_prediction&output=csv")
    assert csv["Content-Type"] == "text/csv"
    text = b"".join(csv.streaming_content).decode()
    assert text.splitlines()[0].startswith("seq,occurred_at,actor,action")
    assert "version.registered" in text
    bad = api(viewer).get("/api/v1/audit/report/?output=docx")
    assert bad.status_code == 400 and "output" in bad.json()["errors"]
    assert api(viewer).get("/api/v1/audit/report/?model=nope").status_code == 404


def test_a_date_only_until_includes_that_whole_day_in_the_list_report_and_command(
        api, viewer, data_scientist, churn_model, tmp_path):
    from django.core.management import call_command
    from django.utils import timezone

    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    today = timezone.localdate().isoformat()
    yesterday = (timezone.localdate() - timezone.timedelta(days=1)).isoformat()
    client = api(viewer)

    listed = client.get(f"/api/v1/audit/?model=churn_prediction&until={today}").json()
    assert [e["action"] for e in listed["results"]] == ["model.created", "version.registered"]
    assert client.get(f"/api/v1/audit/?model=churn_prediction&until={yesterday}"
                      ).json()["results"] == []
    assert [e["action"] for e in client.get(
        f"/api/v1/audit/?model=churn_prediction&since={today}").json()["results"]] == [
        "model.created", "version.registered"]

    report = client.get(f"/api/v1/audit/report/?output=csv&model=churn_prediction&until={today}")
    assert report.status_code == 200
    assert "version.registered" in b"".join(report.streaming_content).decode()

    target = tmp_path / "events.csv"
    call_command("audit_report", "--format", "csv", "--until", today, "--output", str(target))
    assert "version.registered" in target.read_text()
    call_command("audit_report", "--format", "csv", "--until", yesterday, "--output",
                 str(target))
    assert "version.registered" not in target.read_text()


def test_a_date_that_does_not_exist_is_a_400_naming_the_bound(api, viewer):
    response = api(viewer).get("/api/v1/audit/?until=2026-02-30")
    assert response.status_code == 400
    assert "until" in response.json()["errors"]
    response = api(viewer).get("/api/v1/audit/report/?since=2026-02-30")
    assert response.status_code == 400
    assert "since" in response.json()["errors"]


def test_the_report_csv_defuses_spreadsheet_formulas(api, viewer, approver, data_scientist,
                                                     churn_model):
    # A reason typed by a person (here a review's comment) must not run as a formula when
    # the CSV is opened in a spreadsheet.
    import csv as csv_module
    import io

    from compliance import services as compliance

    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    helpers.force_stage(version, "production")
    compliance.version_review_record(version=version, actor=approver,
                                     comment='=HYPERLINK("http://evil.example","x")')
    response = api(viewer).get("/api/v1/audit/report/?model=churn_prediction&output=csv")
    rows = list(csv_module.DictReader(io.StringIO(
        b"".join(response.streaming_content).decode())))
    reviewed = next(row for row in rows if row["action"] == "version.reviewed")
    assert reviewed["reason"] == '\'=HYPERLINK("http://evil.example","x")'
    assert not any(value.startswith(("=", "+", "-", "@")) for row in rows
                   for value in row.values())


def test_a_quarter_in_other_scripts_digits_is_a_400(api, viewer, churn_model):
    # "١٢٣٤Q1" matched \d and was read as 1234Q1; its text then went, non-ASCII, into the
    # download's file name (a MIME-encoded Content-Disposition no browser reads).
    response = api(viewer).get("/api/v1/audit/report/", {"quarter": "١٢٣٤Q1", "output": "csv"})
    assert response.status_code == 400
    assert "quarter" in response.json()["errors"]
