"""An admin imports a team's model directory from the admin, in headless Chromium at
1366x768: upload the zip, read the plan (which fits the screen), confirm, see the outcome.
The screenshots go to var/test-artifacts/screens/import_*.png."""

from __future__ import annotations

import pytest

from tests import helpers
from tests.e2e.test_browser_pages import HEIGHT, MEASURE, SCREENS, WIDTH
from tests.governance.test_admin_import import zip_of
from tests.registry import import_trees as trees

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def fits(measured) -> bool:
    return measured["page"] <= measured["window"] and all(
        width <= box for width, box in measured["lists"])


def test_an_admin_uploads_a_directory_reads_the_plan_and_imports_it(
        live_app, admin_user, browser, tmp_path, monkeypatch):
    from registry.models import ModelVersion

    # The test's own ORM reads run while Playwright's event loop is alive in this thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    archive = tmp_path / "library-models.zip"
    archive.write_bytes(zip_of(trees.library_tree(tmp_path / "models")))
    SCREENS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    page.goto(f"{live_app}/admin/login/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", helpers.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_app}/admin/")

    page.goto(f"{live_app}/admin/registry/registeredmodel/")
    page.click("text=Import a model directory")
    page.set_input_files("#id_archive", str(archive))
    page.fill("#id_reason", "moving the library team in")
    page.click("input[type=submit][value='Upload and show the plan']")
    page.wait_for_selector("input[name=confirm]")
    plan = page.inner_text("#content")
    for line in ("overdue_prediction", "0.9.2", "churn_prediction", "1.1.0"):
        assert line in plan
    measured = page.evaluate(MEASURE)
    page.screenshot(path=str(SCREENS / "import_plan.png"), full_page=True)
    assert fits(measured), measured
    assert not ModelVersion.objects.exists()  # nothing before the confirmation

    page.click("input[name=confirm]")
    page.wait_for_load_state()
    page.screenshot(path=str(SCREENS / "import_outcome.png"), full_page=True)
    assert fits(page.evaluate(MEASURE))
    assert "Traceback" not in page.content()
    imported = {(v.model.name, v.version, v.stage)
                for v in ModelVersion.objects.select_related("model")}
    assert ("overdue_prediction", "0.9.2", "archived") in imported
    assert ("overdue_prediction", "1.0.0", "staging") in imported
