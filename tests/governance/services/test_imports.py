"""governance.services.imports and `manage.py import_models`: an admin's attested import of
a team's model directory, its dry run, its reruns, and what it refuses."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core.models import AuditEvent
from governance import services
from governance.admin.registry_pages import lifecycle_html
from governance.models import ApprovalRequest, Deployment
from registry import reconcile
from registry.importing import plan_directory
from registry.models import ModelVersion
from registry.selectors import import_state
from tests import helpers
from tests.registry import import_trees as trees

REASON = "moving the library team in"


def _run(*args) -> str:
    out = io.StringIO()
    call_command("import_models", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def _import(root, *extra, user="ada") -> str:
    return _run(root, "--as", user, "--reason", REASON, *extra)


def _versions() -> dict[tuple[str, str], ModelVersion]:
    return {(v.model.name, v.version): v
            for v in ModelVersion.objects.select_related("model").prefetch_related("files")}


@pytest.fixture
def library(tmp_path):
    return trees.library_tree(tmp_path / "source" / "models")


def test_a_dry_run_prints_the_plan_and_changes_nothing(admin_user, library):
    before = trees.tree_digest(library)
    with helpers.Unchanged(allow_actions=()):
        out = _run(library, "--dry-run")
    assert trees.tree_digest(library) == before
    assert "overdue_prediction (classification)" in out
    assert "v0.9.2 → 0.9.2" in out
    assert "preprocessor feature_scaler.pkl" in out
    assert "lands in: staging, with an approval request to production" in out
    assert "metadata_v0.8.1.json: metadata of a version whose model file is not here" in out
    assert "Dry run: nothing was changed." in out


def test_an_import_keeps_stages_dates_and_retirement_and_attests_each_version(
        admin_user, library):
    before = trees.tree_digest(library)
    out = _import(library)
    assert trees.tree_digest(library) == before  # the source is only read
    found = _versions()
    assert {key: v.stage for key, v in found.items()} == {
        ("overdue_prediction", "1.0.0"): "staging",  # production, awaiting approval
        ("overdue_prediction", "0.9.2"): "archived",
        ("churn_prediction", "1.1.0"): "staging",
        ("ensemble_overdue_prediction", "1.0.0"): "experiment"}
    production = found["overdue_prediction", "1.0.0"]
    assert production.created_at.isoformat() == "2024-06-01T09:00:00+00:00"
    assert production.changelog == ["Random forest replaces logistic regression"]
    assert [(f.role, f.filename) for f in production.files.all()] == [
        ("model", "overdue_prediction_model_v1.0.0.pkl"),
        ("preprocessor", "feature_scaler.pkl"), ("other", "source_metadata.json")]
    request = ApprovalRequest.objects.get(version=production)
    assert (request.status, request.from_stage, request.to_stage) == (
        "pending", "staging", "production")
    assert request.validation_run is not None  # it waits for the import's validation
    retired = found["overdue_prediction", "0.9.2"]
    assert retired.lifecycle["retired_at"] == "2024-06-15T00:00:00+00:00"
    assert retired.lifecycle["replaced_by"] == "1.0.0"
    assert retired.lifecycle["reason"].startswith("Replaced by the random forest")
    assert retired.extra_metadata["source_version"] == "v0.9.2"
    # The store's folder and metadata.json say the same as the row.
    written = json.loads((Path(helpers.settings.MODEL_STORE_ROOT) / "archived" /
                          "overdue_prediction" / "v0.9.2" / "metadata.json").read_text())
    assert written["retired_at"] == "2024-06-15T00:00:00+00:00"
    assert written["imported"]["by"] == "ada"
    # One attested import event per version, naming the importer, the source and its hashes.
    events = AuditEvent.objects.filter(action="version.imported").order_by("seq")
    assert sorted(e.object_repr for e in events) == sorted(str(v) for v in found.values())
    event = events.get(object_id=str(production.pk))
    after = json.loads(event.after)
    assert (event.actor_name, event.reason) == ("ada", REASON)
    assert after["source"] == "production/overdue_prediction"
    assert after["source_root"] == str(library)
    assert after["files"] == {f.relative: f.sha256 for f in plan_directory(library).versions[
        [v.source for v in plan_directory(library).versions].index(
            "production/overdue_prediction")].files}
    assert after["stage"] == "production" and after["trusted"] is False
    # The version's admin page tells it in a sentence.
    page = str(lifecycle_html(production.lifecycle))
    assert "Imported as production on " in page and "by <b>ada</b>" in page
    assert "awaiting approval to production" in page
    assert "Summary: 4 imported" in out
    # Rows, folders and metadata.json agree: reconcile finds nothing to say about them.
    assert reconcile.reconcile(repair=False) == []


def test_a_second_run_imports_nothing_and_says_so(admin_user, library):
    _import(library)
    with helpers.Unchanged(allow_actions=()):
        out = _import(library)
    assert "Nothing new to import: 4 version(s) were imported before." in out
    assert "[already imported]" in _run(library, "--dry-run")


def test_a_stopped_run_is_finished_by_running_again(admin_user, library):
    plan = plan_directory(library)

    class Stop(Exception):
        pass

    def stop_after_first(result):
        assert result.outcome == "imported"
        raise Stop

    with pytest.raises(Stop):
        services.directory_import(plan=plan, actor=admin_user, reason=REASON,
                                  checkpoint=stop_after_first)
    assert ModelVersion.objects.count() == 1
    out = _import(library)
    assert "Summary: 1 already, 3 imported" in out
    assert ModelVersion.objects.count() == 4
    assert AuditEvent.objects.filter(action="version.imported").count() == 4


def test_a_production_version_imported_without_its_request_gets_it_on_the_rerun(
        admin_user, library):
    """A run stopped between a production version's rows and its approval request."""
    plan = plan_directory(library)
    planned = next(v for v in plan.versions if v.stage == "production")
    services.version_import(planned=planned, plan=plan, actor=admin_user, reason=REASON)
    ApprovalRequest.objects.all().delete()  # as if the run had stopped before it
    _import(library)
    assert ApprovalRequest.objects.filter(version__version="1.0.0",
                                          status="pending").count() == 1


def test_a_file_that_fails_to_copy_stops_its_version_only(admin_user, library):
    plan = plan_directory(library)
    # The churn model changes after the plan was made (as a copy failing half-way would).
    changed = library / "staging/churn_prediction_v1.1/churn_prediction_model_v1.1.0.pkl"
    original = changed.read_bytes()
    changed.write_bytes(original + b"x")
    results = services.directory_import(plan=plan, actor=admin_user, reason=REASON)
    outcomes = {(r.planned.model, r.outcome) for r in results}
    assert ("churn_prediction", "failed") in outcomes
    assert sum(r.outcome == "imported" for r in results) == 3
    assert not (Path(helpers.settings.MODEL_STORE_ROOT) / ".incoming").exists() or not any(
        (Path(helpers.settings.MODEL_STORE_ROOT) / ".incoming").iterdir())
    changed.write_bytes(original)
    out = _import(library)
    assert "Summary: 3 already, 1 imported" in out


def test_a_checksum_mismatch_stops_that_version_and_the_others_go_on(admin_user, tmp_path):
    root = trees.named_files_tree(tmp_path / "models", checksum="sha256:" + "0" * 64)
    trees.write(root / "trained/churn_v2_20240201.pkl", trees.model(9))
    with pytest.raises(CommandError, match="1 version"):
        _import(root)
    assert set(_versions()) == {("churn", "2.0.0")}


def test_trusted_stages_make_the_production_version_serve_at_once(admin_user, api, library):
    out = _import(library, "--trust-stages")
    production = _versions()["overdue_prediction", "1.0.0"]
    assert production.stage == "production"
    deployment = Deployment.objects.get(version=production)
    assert (deployment.kind, deployment.status, deployment.deployed_by) == (
        "import", "completed", admin_user)
    assert not ApprovalRequest.objects.exists()
    assert "in production (deployment #" in out
    client, url = api(admin_user), "/api/v1/models/overdue_prediction/predict/"
    body = {"inputs": [[0.5, -1.0, 2.0]]}
    # Trusted or not, nothing is served before the sandbox's validation (queued by the
    # import, run by the worker on commit) has passed.
    assert client.post(url, body, format="json").status_code == 503
    helpers.mark_validated(production)
    answer = client.post(url, body, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["version"] == "1.0.0"
    assert "its stage trusted" in str(lifecycle_html(production.lifecycle))


def test_a_version_that_is_no_number_gets_the_next_free_and_keeps_its_own(admin_user,
                                                                           tmp_path):
    pytest.importorskip("torch")
    root = trees.switch_tree(tmp_path / "models")
    out = _import(root, "--model", "glasses_recommender", "--trust-stages")
    assert "glasses_recommender: v4_no_leakage -> 4.0.0" in out
    found = _versions()
    four = found["glasses_recommender", "4.0.0"]
    assert four.extra_metadata["source_version"] == "v4_no_leakage"
    assert four.extra_metadata["source_model_name"] == "model.pth"
    assert four.extra_metadata["model_architecture"]["type"] == "HybridRecommender"
    # A state dict cannot be served: trusted or not, it waits in staging.
    assert four.stage == "staging"
    assert not Deployment.objects.exists()
    assert found["glasses_recommender", "3.0.0"].stage == "archived"


def test_only_an_admin_with_a_reason_imports(data_scientist, admin_user, library):
    with helpers.Unchanged(), pytest.raises(CommandError, match="Only an admin"):
        _import(library, user="dana")
    assert AuditEvent.objects.filter(action="permission.denied").exists()
    with helpers.Unchanged(allow_actions=()), pytest.raises(CommandError, match="reason"):
        _run(library, "--as", "ada", "--reason", "  ")


def test_import_state_lists_imported_keys(admin_user, tmp_path):
    root = trees.plain_tree(tmp_path / "churn_model")
    _import(root)
    existing, imported = import_state()
    (key,) = imported
    assert imported[key] == "churn_model 1.0.0"
    assert existing == {"churn_model": {"1.0.0": key}}
