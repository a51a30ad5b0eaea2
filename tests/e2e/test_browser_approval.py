"""An approver approves a promotion in the admin, in headless Chromium (Debian's package)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests import helpers

# One xdist worker runs every e2e test: they share the broker (Redis) and real processes.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

# Playwright's sync API runs an event loop in this thread, where Django refuses ORM calls:
# everything the test needs from the database is read by the fixtures, before it starts.
# (The browser fixture is in conftest.py.)


def test_an_approver_approves_in_the_admin_and_sees_the_new_production_version(
    promotion, live_app, celery_worker, approver, browser, tmp_path, store_root
):
    page = browser.new_page()
    page.goto(f"{live_app}/admin/login/")
    page.fill("#id_username", "april")
    page.fill("#id_password", helpers.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_app}/admin/")

    page.goto(f"{live_app}/admin/governance/approvalrequest/")
    page.click(f"text=#{promotion['request_id']}")
    page.wait_for_selector("#approval-review")
    assert page.locator("#validation-checks").inner_text().count("passed") >= 5
    assert "1.0.0" in page.locator("h2", has_text="Metrics").inner_text()
    page.fill("#id_comment", "Metrics and validation reviewed")
    page.click("input[name=approve]")
    page.wait_for_selector(".messagelist .success")
    page.screenshot(path=str(tmp_path / "approved.png"))

    new, old = promotion["new"], promotion["old"]
    deadline = time.monotonic() + 600
    while True:
        page.goto(f"{live_app}/admin/registry/modelversion/{new.pk}/change/")
        badge = page.locator(".stage-badge").first.get_attribute("data-stage")
        if badge == "production" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert badge == "production"
    page.goto(f"{live_app}/admin/registry/modelversion/{old.pk}/change/")
    assert page.locator(".stage-badge").first.get_attribute("data-stage") == "archived"
    page.goto(f"{live_app}/admin/governance/approvalrequest/?status=all")
    assert "approved" in page.locator("#result_list").inner_text()

    # On disk: the new version in production/, the old one archived with its retirement.
    root = Path(store_root)
    assert (root / f"production/churn_prediction/v{new.version}/model.joblib").exists()
    assert not (root / f"production/churn_prediction/v{old.version}").exists()
    retired = json.loads(
        (root / f"archived/churn_prediction/v{old.version}/metadata.json").read_text())
    assert (retired["replaced_by"], retired["stage"]) == (new.version, "archived")
    assert retired["retired_at"] and retired["retired_by"]
