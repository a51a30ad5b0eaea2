"""Model directories laid out as the source documents describe them (seeds 000-004), with
small fitted models, for the import tests."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from tests import helpers


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, (dict, list)):
        data = json.dumps(data, indent=2)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def model(seed: int = 0) -> bytes:
    return helpers.sklearn_bytes("logreg", seed)


def scaler() -> bytes:
    return helpers.sklearn_bytes("scaler")


def torch_state_dict() -> bytes:
    """Seed 002's model.pth: what `torch.save(model.state_dict(), ...)` writes."""
    import torch

    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(3, 1).state_dict(), buffer)
    return buffer.getvalue()


def library_tree(root: Path) -> Path:
    """Seeds 000 and 004: production/<model>/, staging/<model>_v1.1/, archived/<model>/
    (metadata_v0.9.2.json beside <model>_model_v0.9.2.pkl), experiments/<project>/,
    metadata/model_registry.json."""
    features = helpers.FEATURES
    write(root / "README.md", "# Library Analytics Models Directory\n")
    write(root / "production/overdue_prediction/overdue_prediction_model_v1.0.0.pkl", model(1))
    write(root / "production/overdue_prediction/metadata.json", {
        "model_name": "overdue_prediction", "version": "1.0.0",
        "algorithm": "Random Forest Classifier", "features": features, "target": "overdue",
        "metrics": {"accuracy": 0.832, "auc": 0.569}, "created_at": "2024-06-01T09:00:00Z",
        "deployed_date": "2024-06-15", "business_impact": "25% fewer overdue books",
        "changelog": ["Random forest replaces logistic regression"]})
    write(root / "production/overdue_prediction/feature_scaler.pkl", scaler())
    write(root / "staging/churn_prediction_v1.1/metadata.json", {
        "model_name": "churn_prediction", "version": "1.1.0", "algorithm": "XGBoost",
        "features": features, "metrics": {"accuracy": 0.847, "precision": "79.8%"},
        "created_at": "2024-09-01"})
    write(root / "staging/churn_prediction_v1.1/churn_prediction_model_v1.1.0.pkl", model(2))
    write(root / "staging/churn_prediction_v1.1/validation_results.json", {"unit": "passed"})
    write(root / "staging/churn_prediction_v1.1/ab_test_config.json", {"split": [90, 10]})
    write(root / "archived/overdue_prediction/metadata_v0.9.2.json", {
        "model_name": "overdue_prediction", "version": "v0.9.2",
        "algorithm": "Logistic Regression", "created_at": "2024-01-10",
        "deployed_date": "2024-02-01", "retired_date": "2024-06-15",
        "retirement_reason": "Replaced by the random forest (AUC 0.51 -> 0.57)",
        "replaced_by": "v1.0.0", "lessons_learned": ["seasonality matters"]})
    write(root / "archived/overdue_prediction/metadata_v0.8.1.json", {
        "model_name": "overdue_prediction", "version": "v0.8.1", "algorithm": "Decision Tree"})
    write(root / "archived/overdue_prediction/overdue_prediction_model_v0.9.2.pkl", model(3))
    write(root / "experiments/ensemble_overdue_prediction/stacking_approach.pkl", model(4))
    write(root / "experiments/ensemble_overdue_prediction/voting_classifier_results.json",
          {"f1": 0.7})
    write(root / "experiments/ensemble_overdue_prediction/performance_comparison.csv",
          "model,f1\nstacking,0.7\n")
    write(root / "metadata/model_registry.json", {"models": {
        "overdue_prediction": {"versions": {"1.0.0": {"description": "Predicts late returns",
                                                      "author": "Library data team"}}},
        "churn_prediction": {"versions": {"1.1.0": {"description": "Member churn"}}}}})
    write(root / "metadata/performance_tracking.md", "weekly metrics\n")
    return root


def trained_tree(root: Path) -> Path:
    """Seed 001: trained/<name>_v<version>/model.joblib, evaluation/, metadata/."""
    write(root / "trained/random_forest_classifier_v1.0.0/model.joblib", model(5))
    write(root / "trained/random_forest_classifier_v1.1.0/model.joblib", model(6))
    write(root / "evaluation/random_forest_classifier_v1.0.0/metrics.json", {"accuracy": 0.85})
    write(root / "metadata/random_forest_classifier_v1.0.0.json", {
        "model_name": "random_forest_classifier", "version": "1.0.0",
        "description": "Random Forest model for customer churn prediction",
        "created_at": "2025-06-07T10:00:00Z", "author": "Your Name",
        "framework": "scikit-learn", "features": helpers.FEATURES, "target": "churn",
        "hyperparameters": {"n_estimators": 100}, "metrics": {"accuracy": 0.85},
        "tags": ["classification", "churn"]})
    return root


def switch_tree(root: Path) -> Path:
    """Seed 002: production/ staging/ archive/v3_2024-11-10/, each with model.pth,
    encoders.pkl and metadata.json (version "v4_no_leakage", model_name a file name)."""
    def version(folder: str, label: str, created: str, weights: bytes):
        write(root / folder / "model.pth", weights)
        write(root / folder / "encoders.pkl", scaler())
        write(root / folder / "metadata.json", {
            "version": label, "model_name": "model.pth", "encoder_name": "encoders.pkl",
            "created_date": created, "deployed_date": created, "description": "Recommender",
            "metrics": {"final_val_loss": 89.43, "final_val_mae": 5.74},
            "model_architecture": {"type": "HybridRecommender", "embedding_dim": 384},
            "changelog": [f"{label}: changes"], "status": "active"})

    import torch

    weights = []
    for seed in range(3):
        torch.manual_seed(seed)
        buffer = io.BytesIO()
        torch.save(torch.nn.Linear(3, 1).state_dict(), buffer)
        weights.append(buffer.getvalue())
    version("archive/v3_2024-11-10", "v3", "2024-11-10", weights[0])
    version("production", "v4_no_leakage", "2024-11-15", weights[1])
    version("staging", "v5_more_data", "2024-11-20", weights[2])
    write(root / "README.md", "# ML Model Version Management\n")
    return root


def named_files_tree(root: Path, *, checksum: str | None = None) -> Path:
    """Seed 003: trained/{name}_{version}_{date}.pkl, preprocessing/, metadata/model_info.json
    with checksum "sha256:...", checkpoints/."""
    data = model(7)
    write(root / "trained/fraud_detector_v1_20240101.pkl", data)
    write(root / "preprocessing/scaler.pkl", scaler())
    write(root / "metadata/model_info.json", {
        "name": "fraud_detector", "version": "1.0.0", "algorithm": "Random Forest",
        "framework": "scikit-learn", "created_at": "2024-01-01T00:00:00Z",
        "features": helpers.FEATURES, "target": "is_fraud",
        "metrics": {"accuracy": 0.95, "f1_score": 0.90},
        "file_path": "trained/fraud_detector_v1_20240101.pkl", "file_size": "2.5MB",
        "checksum": checksum or "sha256:" + hashlib.sha256(data).hexdigest()})
    write(root / "checkpoints/epoch_10.pth", b"not a model")
    write(root / "README.md", "# ML Models Directory\n")
    return root


def plain_tree(root: Path) -> Path:
    """A folder holding one model's files and nothing else."""
    write(root / "churn.joblib", model(8))
    write(root / "scaler.pkl", scaler())
    write(root / "notes.txt", "trained on October's data\n")
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under `root` with its sha256 and mode: the source must not change."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        stat = path.lstat()
        found[rel] = ("dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest(),
                      stat.st_mode, stat.st_mtime_ns)
    return found
