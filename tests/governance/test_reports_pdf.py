"""The audit report as PDF: the same story as the HTML (approvers, files with sha256), with
"Page N of M", the generation time, the chain's verdict and the range; a quarter as the
range; bad input refused with nothing written; a clear 503 when the server cannot make PDFs."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pypdf
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from core import roles
from core.errors import ApplicationError
from core.pdf import SYSTEM_PACKAGES
from governance import reports
from tests import helpers
from tests.conftest import _person
from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db(transaction=True)  # registration validates on commit

ROOT = Path(__file__).resolve().parents[2]
COMMENT = "Backtest on October members holds; recall 0.79"
REPORT = "/api/v1/audit/report/"


def _pdf_pages(content: bytes) -> list[str]:
    assert content.startswith(b"%PDF-")
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages]


def _squeezed(text: str) -> str:
    """Text without white space: a table cell may wrap a sha256 or a sentence anywhere."""
    return "".join(text.split())


def _this_quarter() -> str:
    return reports.quarter_of(timezone.localdate())


@pytest.fixture
def cora(db, django_user_model):
    """The compliance officer: a staff viewer, who reads every team's models in the admin."""
    return _person(django_user_model, "cora", roles.VIEWER, is_staff=True)


@pytest.fixture
def approved(api, data_scientist, approver, churn_model):
    """churn_prediction 1.0.0 registered by dana, moved to staging, asked for production and
    approved by april with COMMENT, deployed; its model file's sha256."""
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    base = "/api/v1/models/churn_prediction/versions/1.0.0/transitions/"
    client = api(data_scientist)
    for stage in ("staging", "production"):
        response = client.post(base, {"to_stage": stage, "reason": f"ready for {stage}"},
                               format="json")
        assert response.status_code == 202, response.json()
    request_id = response.json()["request"]["id"]
    response = api(approver).post(f"/api/v1/approvals/{request_id}/approve",
                                  {"comment": COMMENT}, format="json")
    assert response.json()["deployment"]["status"] == "completed", response.json()
    return {"sha256": helpers.sha256(helpers.sklearn_bytes())}


def test_the_pdf_says_what_the_html_shows_with_page_numbers_time_verdict_and_range(
        api, viewer, approved):
    quarter = _this_quarter()
    html = api(viewer).get(REPORT, {"quarter": quarter, "model": "churn_prediction"})
    assert html.status_code == 200
    page = html.content.decode()
    # The files table: role, name, size and the whole sha256 (not cut like the events' hashes).
    size = len(helpers.sklearn_bytes())
    assert re.search(rf"<td>model</td><td>model.joblib</td><td class=\"num\">{size}</td>"
                     rf"<td><code class=\"sha256\">{approved['sha256']}</code>", page)
    assert "april approved" in page and COMMENT in page
    assert f"Range: {quarter}: from " in page and "verified" in page

    response = api(viewer).get(REPORT, {"quarter": quarter, "model": "churn_prediction",
                                        "output": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert (f'filename="audit-churn_prediction-{quarter}.pdf"'
            in response["Content-Disposition"])
    pages = _pdf_pages(response.content)
    assert len(pages) >= 2  # so that "every page" below means something
    text = _squeezed("\n".join(pages))
    for shown in ("churn_prediction 1.0.0", "Registered by dana", "april approved", COMMENT,
                  approved["sha256"], "model.joblib", str(size), "Audit chain: verified",
                  f"Range: {quarter}: from", "Generated"):
        assert _squeezed(shown) in text, shown
    # Every page: its number of the total, when it was made, the chain's verdict, the range.
    stamp = re.compile(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    for number, page_text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page_text
        assert stamp.search(page_text), page_text
        assert "chain verified" in page_text and quarter in page_text


def test_a_broken_chain_says_so_on_every_page(api, viewer, approved):
    from core.models import AuditEvent

    event = AuditEvent.objects.get(action="request.approval_given")
    helpers.audit_tamper((f"UPDATE {AuditEvent._meta.db_table} SET actor_name = 'mallory' "
                          "WHERE seq = %s", [event.seq]))
    pages = _pdf_pages(api(viewer).get(REPORT, {"output": "pdf"}).content)
    assert all(f"chain BROKEN at event #{event.seq}" in page for page in pages)
    assert "chain verified" not in " ".join(pages)


def test_a_quarter_runs_from_its_first_midnight_to_the_next_quarters(settings):
    settings.TIME_ZONE = "Europe/Paris"
    paris = dt.timezone(dt.timedelta(hours=1))
    assert reports.quarter_bounds("2026Q4") == {
        "since": dt.datetime(2026, 10, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "until": dt.datetime(2027, 1, 1, tzinfo=paris)}
    assert reports.quarter_bounds("2026-q1") == {"since": dt.datetime(2026, 1, 1, tzinfo=paris),
                                                 "until": dt.datetime(2026, 4, 1,
                                                                      tzinfo=dt.timezone(
                                                                          dt.timedelta(hours=2)))}
    assert reports.report_period(quarter=" 2026q2 ")["quarter"] == "2026Q2"
    assert reports.quarter_of(dt.date(2026, 12, 2)) == "2026Q4"
    assert reports.quarter_of(dt.date(2026, 12, 2), back=1) == "2026Q3"
    assert reports.quarter_of(dt.date(2026, 1, 1), back=1) == "2025Q4"
    assert reports.quarter_of(dt.date(2026, 3, 31)) == "2026Q1"
    for bad in ("2026Q5", "2026Q0", "Q4", "2026", "26Q4", "2026Q4x", "0000Q1", "9999Q4", ""):
        with pytest.raises(ApplicationError) as refused:
            reports.quarter_bounds(bad)
        assert refused.value.field == "quarter", bad
    assert reports.quarter_bounds("9999Q3")["until"].year == 9999


def test_a_quarter_bounds_the_report(api, viewer, approved):
    client = api(viewer)

    def events(**query) -> str:
        response = client.get(REPORT, {"output": "csv", **query})
        assert response.status_code == 200
        return b"".join(response.streaming_content).decode()

    assert "request.approval_given" in events(quarter=_this_quarter())
    last = reports.quarter_of(timezone.localdate(), back=1)
    assert events(quarter=last).splitlines()[1:] == []
    html = client.get(REPORT, {"quarter": last}).content.decode()
    assert "No versions in scope" in html and "All events in scope (0)" in html


@pytest.mark.parametrize(("query", "field", "words"), [
    ({"quarter": "2026Q5"}, "quarter", "2026Q4"),
    ({"quarter": "last"}, "quarter", "2026Q4"),
    ({"quarter": "2026Q4", "since": "2026-10-01"}, "quarter", "since"),
    ({"quarter": "2026Q4", "until": "2026-12-31"}, "quarter", "until"),
    ({"quarter": "2026Q4", "since": "2026-10-01", "until": "2026-12-31"}, "quarter",
     "since and until"),
    ({"output": "docx"}, "output", "pdf"),
])
def test_bad_ranges_are_a_400_naming_the_field_and_write_nothing(api, viewer, churn_model,
                                                                 query, field, words):
    for output in ("pdf", "html", "csv"):
        with Unchanged(allow_actions=()):
            response = api(viewer).get(REPORT, {"output": output, **query})
        assert response.status_code == 400, output
        body = response.json()
        assert list(body["errors"]) == [field], output
        assert words in body["errors"][field][0], output


def test_an_outsider_gets_no_report(api, outsider, approved):
    response = api(outsider).get(REPORT, {"output": "pdf"})
    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/json"
    assert api().get(REPORT, {"output": "pdf"}).status_code == 401


def test_the_command_writes_the_quarters_pdf(approved, tmp_path):
    target = tmp_path / "q.pdf"
    out = io.StringIO()
    call_command("audit_report", "--format", "pdf", "--quarter", _this_quarter(),
                 "--output", str(target), stdout=out)
    assert f"wrote {target}" in out.getvalue()
    text = _squeezed(" ".join(_pdf_pages(target.read_bytes())))
    for shown in ("april approved", approved["sha256"], "Page1of", "Auditchain:verified",
                  f"Range:{_this_quarter()}:from"):
        assert _squeezed(shown) in text, shown


@pytest.mark.parametrize(("args", "words"), [
    (["--format", "pdf"], "--output"),
    (["--format", "pdf", "--quarter", "2026Q9", "--output", "{target}"], "--quarter"),
    (["--format", "pdf", "--quarter", "2026Q4", "--since", "2026-10-01",
      "--output", "{target}"], "since"),
    (["--format", "html", "--quarter", "2026Q4", "--until", "2026-12-31",
      "--output", "{target}"], "until"),
])
def test_the_command_refuses_bad_input_and_writes_nothing(churn_model, tmp_path, args, words):
    folder = tmp_path / "out"
    folder.mkdir()
    with Unchanged(allow_actions=()), pytest.raises(CommandError) as refused:
        call_command("audit_report", *[a.format(target=folder / "report.pdf") for a in args],
                     stdout=io.StringIO())
    assert words in str(refused.value)
    assert list(folder.iterdir()) == []


def test_the_admin_offers_the_quarters_and_downloads_the_pdf(client, cora, approved):
    client.force_login(cora)
    quarter, last = _this_quarter(), reports.quarter_of(timezone.localdate(), back=1)
    form = client.get("/admin/core/auditevent/report/").content.decode()
    assert "Download PDF" in form
    assert f"This quarter ({quarter})" in form and f"Last quarter ({last})" in form
    assert f"?download=1&amp;output=pdf&amp;quarter={quarter}" in form

    response = client.get("/admin/core/auditevent/report/",
                          {"download": "1", "output": "pdf", "quarter": quarter})
    assert response["Content-Type"] == "application/pdf"
    assert f"audit-report-all-{quarter}.pdf" in response["Content-Disposition"]
    text = _squeezed(" ".join(_pdf_pages(response.content)))
    assert approved["sha256"] in text and "aprilapproved" in text

    with Unchanged(allow_actions=()):
        refused = client.get("/admin/core/auditevent/report/",
                             {"download": "1", "output": "pdf", "quarter": quarter,
                              "since": "2026-10-01"}, follow=True)
    assert '<li class="error">quarter: give a quarter or since, not both' in (
        refused.content.decode().lower())


# --- A server without Pango ------------------------------------------------------------------

def test_without_pango_the_api_answers_503_naming_the_packages(api, viewer, approved,
                                                               pango_missing):
    with Unchanged(allow_actions=()):
        response = api(viewer).get(REPORT, {"output": "pdf"})
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "pdf_unavailable"
    assert body["missing_system_packages"] == [
        "libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core"]
    assert "libpango-1.0-0" in body["detail"]
    assert api(viewer).get(REPORT).status_code == 200  # the HTML report still works


def test_without_pango_the_admin_says_so_instead_of_a_500(client, cora, approved,
                                                          pango_missing):
    client.force_login(cora)
    response = client.get("/admin/core/auditevent/report/",
                          {"download": "1", "output": "pdf", "quarter": _this_quarter()},
                          follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert '<li class="error">pdf export is unavailable on this server' in page.lower()
    assert "libpangoft2-1.0-0" in page and "Download PDF" in page


def test_without_pango_the_command_fails_clearly_and_writes_nothing(approved, tmp_path,
                                                                    pango_missing):
    target = tmp_path / "q.pdf"
    with pytest.raises(CommandError, match="libpango-1.0-0"):
        call_command("audit_report", "--format", "pdf", "--output", str(target))
    assert not target.exists()


def test_ci_installs_and_the_readme_names_the_system_packages():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    for package in SYSTEM_PACKAGES:
        assert package in ci and package in readme, package
    assert "dpkg -s" in ci
