"""The pages an approver reads fit a 1366x768 screen, in headless Chromium (Debian's package).

Logged in as april, the dashboard (showing the request she may decide), the approval queue, the
review page, a version page, the alert list and the audit list must not scroll sideways, and
no list (`#result_list`) may be wider than its container. Each page's screenshot is saved to
var/test-artifacts/screens/<page>.png for a person to look at.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import helpers
from tests.processes import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

SCREENS = ROOT / "var" / "test-artifacts" / "screens"
WIDTH, HEIGHT = 1366, 768
# What does not fit: the page scrolls sideways, or a list is wider than its box.
MEASURE = """() => ({
    page: document.documentElement.scrollWidth, window: window.innerWidth,
    lists: [...document.querySelectorAll('#result_list')].map(
        list => [list.scrollWidth, list.parentElement.clientWidth]),
})"""


@pytest.fixture
def pages(promotion, admin_user):
    """What the pages show, set up (and read) before the browser's event loop starts: the
    pending promotion, an alert with a real drift title, a monitoring pass, a recorded
    verification of the chain."""
    from core import audit
    from monitoring.models import Alert, AlertRule, MonitoringRun

    old, new = promotion["old"], promotion["new"]
    now = timezone.now()
    rule = AlertRule.objects.create(model=old.model, metric="feature_drift", statistic="psi",
                                    threshold=0.2)
    Alert.objects.create(
        rule=rule, model=old.model, severity="warning", value=3.92, threshold=0.2,
        title="Feature drift in days_since_last_visit, late_returns, membership_months "
              "(psi 3.92 > 0.2)",
        evidence={"window_minutes": 60, "versions": {"1.0.0": {"n": 600, "features": {
            "late_returns": {"kind": "numeric", "n": 600, "psi": 3.92, "ks": 0.79}}}}},
        first_seen=now - timedelta(hours=2), last_seen=now)
    MonitoringRun.objects.create(model=old.model, version=old, route="production",
                                 status="alerting", summary="feature drift", created_at=now)
    audit.audit_chain_verify(actor=admin_user)
    request_id = promotion["request_id"]
    return {
        "dashboard": "/admin/",
        "approval_queue": "/admin/governance/approvalrequest/",
        "review": f"/admin/governance/approvalrequest/{request_id}/change/",
        "version": f"/admin/registry/modelversion/{new.pk}/change/",
        "alert_list": "/admin/monitoring/alert/",
        "audit_list": "/admin/core/auditevent/",
    }, request_id


def test_an_approvers_pages_fit_1366_pixels_without_scrolling_sideways(
    pages, live_app, approver, browser
):
    urls, request_id = pages
    SCREENS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    page.goto(f"{live_app}/admin/login/")
    page.fill("#id_username", "april")
    page.fill("#id_password", helpers.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_app}/admin/")
    # The dashboard shows the request she may decide, linked to its review page.
    row = page.locator(f'#dash-decide tr[data-request="{request_id}"]')
    assert "churn_prediction 1.1.0" in row.inner_text()
    assert row.locator("a").get_attribute("href") == urls["review"]

    too_wide = {}
    for name, url in urls.items():
        response = page.goto(f"{live_app}{url}")
        assert response.status == 200, (name, response.status)
        measured = page.evaluate(MEASURE)
        page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)
        if measured["page"] > measured["window"] or any(
                width > box for width, box in measured["lists"]):
            too_wide[name] = measured
        if name in {"approval_queue", "alert_list", "audit_list"}:
            assert measured["lists"], f"{name} shows no list"
    assert too_wide == {}, f"pages wider than {WIDTH} px: {too_wide}"
