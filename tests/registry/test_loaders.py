"""load_model: every framework behind one function, and no load without a matching sha256."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest

from registry import load_model
from registry.loaders import ArtifactIntegrityError, UnapprovedVersion, UnapprovedVersionWarning
from tests import helpers

ROWS = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.2]])


@pytest.fixture
def owner(data_scientist, churn_model):
    return data_scientist


def test_a_sklearn_model_loads_and_predicts_like_the_original(owner):
    helpers.register_direct("churn_prediction", "1.0.0", actor=owner)
    loaded = load_model("churn_prediction", version="1.0.0", allow_unapproved=True)
    original = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    assert loaded.version == "1.0.0"
    np.testing.assert_array_equal(loaded.predict(ROWS), original.predict(ROWS))
    np.testing.assert_allclose(loaded.predict_proba(ROWS), original.predict_proba(ROWS))
    assert loaded.feature_names == helpers.FEATURES


def test_separate_preprocessors_are_applied_in_order_before_the_model(owner):
    scaler_bytes = helpers.sklearn_bytes("scaler")
    helpers.register_direct(
        "churn_prediction", "1.0.0", actor=owner, preprocessors=[("scaler.pkl", scaler_bytes)]
    )
    loaded = load_model("churn_prediction", version="1.0.0", allow_unapproved=True)
    scaler = joblib.load(io.BytesIO(scaler_bytes))
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    expected = model.predict_proba(scaler.transform(ROWS))
    np.testing.assert_allclose(loaded.predict_proba(ROWS), expected)
    # Without the scaler the answer differs, so the test can tell that it was applied.
    assert not np.allclose(model.predict_proba(ROWS), expected)


def test_a_torchscript_model_loads_and_predicts(owner):
    helpers.register_direct("churn_prediction", "1.0.0", actor=owner, framework="torch",
                            data=helpers.torchscript_bytes(), filename="model.pt")
    loaded = load_model("churn_prediction", version="1.0.0", allow_unapproved=True)
    np.testing.assert_allclose(loaded.predict(ROWS), 2 * ROWS.sum(axis=1) + 1, rtol=1e-6)
    assert loaded.predict_proba(ROWS) is None


def test_an_onnx_model_loads_and_predicts(owner):
    helpers.register_direct("churn_prediction", "1.0.0", actor=owner, framework="onnx",
                            data=helpers.onnx_bytes(), filename="model.onnx")
    loaded = load_model("churn_prediction", version="1.0.0", allow_unapproved=True)
    np.testing.assert_allclose(loaded.predict(ROWS)[:, 0], ROWS @ [1, 2, 3] + 0.5, rtol=1e-6)


def _validated(version: str, owner, *, stage: str | None = None, **kwargs):
    row = helpers.register_direct("churn_prediction", version, actor=owner, **kwargs)
    helpers.mark_validated(row)
    if stage:
        helpers.force_stage(row, stage)
    return row


def test_latest_means_highest_semver_not_newest_row(owner):
    for version in ["1.10.0", "2.0.0-rc.1", "1.9.0", "2.0.0-alpha"]:
        _validated(version, owner)
    with pytest.warns(UnapprovedVersionWarning):
        assert load_model("churn_prediction", version="latest",
                          allow_unapproved=True).version == "2.0.0-rc.1"
    _validated("2.0.0", owner)
    _validated("1.11.0", owner)
    with pytest.warns(UnapprovedVersionWarning):
        assert load_model("churn_prediction", version="latest",
                          allow_unapproved=True).version == "2.0.0"


def test_latest_is_the_highest_version_that_passed_validation(owner):
    """Seed 001's `load_model(name, version="latest")` must not reach a version no check
    passed: one never validated, one that failed, one whose pass a later run took back."""
    from governance.models import RunStatus, ValidationRun

    _validated("1.0.0", owner, stage="production")
    passed = _validated("1.1.0", owner, stage="staging")
    helpers.register_direct("churn_prediction", "3.0.0", actor=owner)  # never validated
    failed = helpers.register_direct("churn_prediction", "2.0.0", actor=owner)
    ValidationRun.objects.create(version=failed, trigger="manual", status=RunStatus.FAILED)
    with pytest.warns(UnapprovedVersionWarning, match="1.1.0.*staging, not production"):
        assert load_model("churn_prediction", version="latest",
                          allow_unapproved=True).version == "1.1.0"
    # A newer failed run takes the pass back; a pending one changes nothing.
    ValidationRun.objects.create(version=passed, trigger="manual", status=RunStatus.FAILED)
    ValidationRun.objects.create(version=passed, trigger="manual", status=RunStatus.PENDING)
    assert load_model("churn_prediction", version="latest").version == "1.0.0"


def test_latest_outside_production_is_refused_without_allow_unapproved(owner, tmp_path):
    """Validation is a machine's check, approval a person's: "latest" in staging still runs
    code four eyes have not passed, so the trust boundary stays where it was."""
    marker = tmp_path / "marker"
    _validated("1.0.0", owner, stage="production")
    _validated("1.1.0", owner, data=helpers.hiding_bytes(marker))
    with pytest.raises(UnapprovedVersion, match="1.1.0 is in experiment"):
        load_model("churn_prediction", version="latest")
    assert not marker.exists()


def test_latest_in_production_loads_without_a_warning(owner, recwarn):
    _validated("1.0.0", owner)
    _validated("1.2.0", owner, stage="production")
    assert load_model("churn_prediction", version="latest").version == "1.2.0"
    assert not [w for w in recwarn if issubclass(w.category, UnapprovedVersionWarning)]


def test_latest_with_nothing_validated_says_so(owner):
    helpers.register_direct("churn_prediction", "1.0.0", actor=owner)
    with pytest.raises(LookupError, match="no version that passed validation"):
        load_model("churn_prediction", version="latest", allow_unapproved=True)


def test_stage_narrows_the_choice(owner):
    first = helpers.register_direct("churn_prediction", "1.0.0", actor=owner)
    helpers.register_direct("churn_prediction", "1.1.0", actor=owner)
    helpers.force_stage(first, "production")
    assert load_model("churn_prediction", stage="production").version == "1.0.0"
    with pytest.raises(LookupError, match="no version '1.1.0' in production"):
        load_model("churn_prediction", version="1.1.0", stage="production")
    with pytest.raises(LookupError):
        load_model("churn_prediction", stage="staging", allow_unapproved=True)
    with pytest.raises(LookupError):
        load_model("no_such_model", allow_unapproved=True)


def test_a_tampered_file_raises_and_loads_nothing(owner, store_root, monkeypatch):
    helpers.register_direct("churn_prediction", "1.0.0", actor=owner)
    path = Path(store_root) / "experiments/churn_prediction/v1.0.0/model.joblib"
    # A valid pickle of a different model: loading it would "work", which is the danger.
    path.write_bytes(helpers.sklearn_bytes("linreg"))
    calls = []
    monkeypatch.setattr(joblib, "load", lambda *a, **k: calls.append(a))
    with pytest.raises(ArtifactIntegrityError, match="was registered"):
        load_model("churn_prediction", version="1.0.0", allow_unapproved=True)
    assert calls == []


def test_a_tampered_preprocessor_also_stops_the_load(owner, store_root):
    helpers.register_direct(
        "churn_prediction", "1.0.0", actor=owner,
        preprocessors=[("scaler.pkl", helpers.sklearn_bytes("scaler"))],
    )
    path = Path(store_root) / "experiments/churn_prediction/v1.0.0/scaler.pkl"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ArtifactIntegrityError, match="scaler.pkl"):
        load_model("churn_prediction", version="1.0.0", allow_unapproved=True)


def test_a_symlinked_artifact_is_not_followed(owner, store_root, tmp_path):
    helpers.register_direct("churn_prediction", "1.0.0", actor=owner)
    path = Path(store_root) / "experiments/churn_prediction/v1.0.0/model.joblib"
    elsewhere = tmp_path / "outside.joblib"
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(elsewhere)
    with pytest.raises(Exception, match="cannot be read"):
        load_model("churn_prediction", version="1.0.0", allow_unapproved=True)


def _classifiers():
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    return {
        "forest": RandomForestClassifier(n_estimators=10, random_state=0),
        "extra_trees": ExtraTreesClassifier(n_estimators=10, random_state=0),
        "tree": DecisionTreeClassifier(random_state=0),
        "pipeline_forest": make_pipeline(StandardScaler(),
                                         RandomForestClassifier(n_estimators=10, random_state=0)),
        "logistic": LogisticRegression(),
        # Not argmax by definition: an even vote may be broken differently.
        "neighbours": KNeighborsClassifier(n_neighbors=4),
    }


@pytest.mark.parametrize("kind", list(_classifiers()))
def test_predictions_with_probabilities_equal_predict_and_predict_proba(kind):
    from registry.artifacts import LoadedModel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = np.array(["late", "on_time", "lost"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    estimator = _classifiers()[kind].fit(X, y)
    loaded = LoadedModel(name="m", version="1", framework="sklearn", estimator=estimator)
    rows = rng.normal(size=(500, 3))
    predictions, probabilities = loaded.predict_with_probabilities(rows)
    np.testing.assert_array_equal(predictions, estimator.predict(rows))
    np.testing.assert_allclose(probabilities, estimator.predict_proba(rows))
    # Only where predict is argmax by definition is the model evaluated once.
    assert (loaded._classes_by_argmax is not None) == (kind in {
        "forest", "extra_trees", "tree", "pipeline_forest"})


def test_without_a_version_it_loads_production_and_refuses_to_run_anything_else(
    owner, tmp_path
):
    """load_model runs the artifact in the caller's process: only what four eyes passed,
    unless the caller says they trust it."""
    marker = tmp_path / "marker"
    released = helpers.register_direct("churn_prediction", "1.0.0", actor=owner)
    helpers.force_stage(released, "production")
    helpers.register_direct("churn_prediction", "9.0.0", actor=owner,
                            data=helpers.hiding_bytes(marker))
    assert load_model("churn_prediction").version == "1.0.0"  # not the highest SemVer
    helpers.mark_validated(released.model.versions.get(version="9.0.0"))
    for how in ({"version": "9.0.0"}, {"version": "latest"}, {"stage": "experiment"}):
        with pytest.raises(UnapprovedVersion, match="four eyes have not let it serve"):
            load_model("churn_prediction", **how)
    assert not marker.exists()


def test_a_v_prefixed_version_loads_and_the_estimators_attributes_show_through(owner):
    """As the seeds' services call it: load_model(name, version="v1.0.0"), then classes_."""
    released = helpers.register_direct("churn_prediction", "1.0.0", actor=owner)
    helpers.force_stage(released, "production")
    original = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    loaded = load_model("churn_prediction", version="v1.0.0")
    assert loaded.version == "1.0.0"
    np.testing.assert_array_equal(loaded.classes_, original.classes_)
    assert loaded.n_features_in_ == original.n_features_in_
    with pytest.raises(AttributeError):
        loaded.no_such_attribute  # noqa: B018
    with pytest.raises(LookupError):
        load_model("churn_prediction", version="vx")



def test_a_model_fitted_on_a_dataframe_predicts_on_rows_without_a_warning_per_request():
    """Rows arrive as a matrix in the signature's order; scikit-learn's per-call "X does not
    have valid feature names" warning would otherwise write a log line on every request.

    Run in a fresh interpreter with every warning shown (`-W always`): pytest keeps its own
    warning filters per test, so a filter set when the module is imported is not seen here."""
    script = textwrap.dedent("""
        import numpy as np, pandas as pd
        from sklearn.ensemble import RandomForestClassifier
        from registry.artifacts import LoadedModel
        frame = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 3)), columns=list("abc"))
        estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(
            frame, (frame["a"] > 0).astype(int))
        loaded = LoadedModel(name="m", version="1", framework="sklearn", estimator=estimator)
        rows = np.array([[0.5, -1.0, 2.0]])
        for _ in range(3):
            loaded.predict_with_probabilities(rows)
            loaded.predict(rows)
        print("predicted", loaded.predict(rows)[0] == estimator.predict(
            pd.DataFrame(rows, columns=list("abc")))[0])
    """)
    done = subprocess.run([sys.executable, "-W", "always", "-c", script], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parents[2], timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "predicted True"
    assert "feature names" not in done.stderr
