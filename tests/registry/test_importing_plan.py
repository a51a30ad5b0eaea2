"""registry.importing: each layout of the source documents read into a plan (no database)."""

from __future__ import annotations

import pytest

from registry.importing import normalise_version, plan_directory
from tests.registry import import_trees as trees


@pytest.mark.parametrize(("label", "expected"), [
    ("v1", "1.0.0"), ("v0.9.2", "0.9.2"), ("v1.1", "1.1.0"), ("1.0.0", "1.0.0"),
    ("2.0.0-rc.1", "2.0.0-rc.1"), ("v4_no_leakage", None), ("latest", None), ("", None),
])
def test_versions_are_normalised_to_semver(label, expected):
    assert normalise_version(label) == expected


def _by(plan):
    return {(v.model, v.version): v for v in plan.versions}


def test_the_library_layout_keeps_stages_history_and_other_files(tmp_path):
    plan = plan_directory(trees.library_tree(tmp_path / "models"))
    found = _by(plan)
    assert set(found) == {("overdue_prediction", "1.0.0"), ("overdue_prediction", "0.9.2"),
                          ("churn_prediction", "1.1.0"), ("ensemble_overdue_prediction", "1.0.0")}
    production = found["overdue_prediction", "1.0.0"]
    assert production.stage == "production"
    assert [(f.role, f.name) for f in production.files] == [
        ("model", "overdue_prediction_model_v1.0.0.pkl"),
        ("preprocessor", "feature_scaler.pkl"), ("other", "source_metadata.json")]
    assert production.metadata["description"] == "Predicts late returns"  # the catalogue's
    assert production.metadata["business_impact"] == "25% fewer overdue books"
    assert production.created_at == "2024-06-01T09:00:00+00:00"
    assert production.deployed_at == "2024-06-15T00:00:00+00:00"
    retired = found["overdue_prediction", "0.9.2"]
    assert retired.stage == "archived"
    assert retired.version_note == "v0.9.2 → 0.9.2"
    assert retired.lifecycle == {
        "retired_at": "2024-06-15T00:00:00+00:00",
        "reason": "Replaced by the random forest (AUC 0.51 -> 0.57)",
        "replaced_by": "1.0.0", "source_replaced_by": "v1.0.0"}
    assert retired.task_type == production.task_type == "classification"
    staging = found["churn_prediction", "1.1.0"]
    assert staging.stage == "staging"
    assert {f.name: f.role for f in staging.files if f.role == "other"} == {
        "ab_test_config.json": "other", "source_metadata.json": "other",
        "validation_results.json": "other"}
    assert staging.metadata["metrics"] == {"accuracy": 0.847}
    assert staging.metadata["source_metrics"] == {"precision": "79.8%"}
    assert found["ensemble_overdue_prediction", "1.0.0"].stage == "experiment"
    skipped = {s.path: s.why for s in plan.skipped}
    assert "model file is not here" in skipped["archived/overdue_prediction/metadata_v0.8.1.json"]
    assert "README.md" in skipped and "metadata/performance_tracking.md" in skipped


def test_the_trained_layout_reads_folders_evaluations_and_metadata(tmp_path):
    plan = plan_directory(trees.trained_tree(tmp_path / "models"))
    found = _by(plan)
    first = found["random_forest_classifier", "1.0.0"]
    assert first.metadata["hyperparameters"] == {"n_estimators": 100}
    assert first.created_at == "2025-06-07T10:00:00+00:00"
    assert [(f.role, f.name) for f in first.files] == [
        ("model", "model.joblib"), ("other", "evaluation_metrics.json")]
    assert found["random_forest_classifier", "1.1.0"].stage == "experiment"


def test_a_version_that_is_no_number_gets_the_next_free_one(tmp_path):
    pytest.importorskip("torch")
    plan = plan_directory(trees.switch_tree(tmp_path / "glasses"), model="glasses_recommender")
    found = {v.source_version: v for v in plan.versions}
    assert found["v3"].version == "3.0.0" and found["v3"].stage == "archived"
    assert found["v4_no_leakage"].version == "4.0.0"
    assert found["v4_no_leakage"].stage == "production"
    assert found["v4_no_leakage"].metadata["source_version"] == "v4_no_leakage"
    assert found["v4_no_leakage"].metadata["source_model_name"] == "model.pth"
    assert found["v5_more_data"].version == "5.0.0"
    assert [f.role for f in found["v4_no_leakage"].files] == ["model", "preprocessor", "other"]
    # A state dict is kept, but the app cannot serve it: the plan says so.
    assert not found["v4_no_leakage"].servable
    assert "TorchScript" in found["v4_no_leakage"].warnings[-1]


def test_named_files_get_the_shared_preprocessing_and_a_verified_checksum(tmp_path):
    plan = plan_directory(trees.named_files_tree(tmp_path / "models"))
    (version,) = plan.versions
    assert (version.model, version.version, version.source_version) == (
        "fraud_detector", "1.0.0", "v1")
    assert [(f.role, f.name) for f in version.files] == [
        ("model", "fraud_detector_v1_20240101.pkl"), ("preprocessor", "scaler.pkl")]
    assert "matches its checksum" in version.checksum
    assert not version.problems
    assert "checkpoints/epoch_10.pth" in {s.path for s in plan.skipped}


def test_a_checksum_mismatch_stops_the_version(tmp_path):
    plan = plan_directory(trees.named_files_tree(tmp_path / "models",
                                                 checksum="sha256:" + "0" * 64))
    (version,) = plan.versions
    assert not version.importable
    assert "checksum mismatch" in version.problems[0]


def test_a_plain_folder_is_one_model(tmp_path):
    plan = plan_directory(trees.plain_tree(tmp_path / "churn_model"))
    (version,) = plan.versions
    assert (version.model, version.version, version.stage) == ("churn_model", "1.0.0",
                                                               "experiment")
    assert [(f.role, f.name) for f in version.files] == [
        ("model", "churn.joblib"), ("preprocessor", "scaler.pkl"), ("other", "notes.txt")]


def test_already_imported_versions_are_marked(tmp_path):
    root = trees.plain_tree(tmp_path / "churn_model")
    key = plan_directory(root).versions[0].key
    plan = plan_directory(root, existing={"churn_model": {"1.0.0": key}},
                          imported={key: "churn_model 1.0.0"})
    assert plan.versions[0].already == "churn_model 1.0.0"
    assert plan.to_import == []
