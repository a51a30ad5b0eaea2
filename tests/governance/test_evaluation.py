"""Measured evaluation: validation measures a version on its labelled sample (in the sandbox),
keeps metrics.json and the plots in evaluation/ with their sha256, checks the claimed metrics,
and the admin shows the images to those who may see the version."""

from __future__ import annotations

import io
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn import metrics as sk

from core.models import AuditEvent
from governance import evaluation, services
from governance.models import ValidationRun
from registry import services as registry_services
from registry import store
from registry.models import ArtifactFile, ModelVersion
from tests import helpers

pytestmark = pytest.mark.django_db(transaction=True)
N_ROWS = 200
PLOTS = ["calibration_curve.png", "confusion_matrix.png", "feature_importance.png",
         "pr_curve.png", "roc_curve.png"]


def _sample(kind: str = "logreg", wrong: int = 40):
    """Rows, the model's own answers on them, and labels that disagree on `wrong` rows."""
    X = np.random.default_rng(7).normal(size=(N_ROWS, len(helpers.FEATURES))).round(4)
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes(kind)))
    predicted = model.predict(X)
    if kind == "logreg":
        labels = predicted.copy()
        labels[:wrong] = 1 - labels[:wrong]  # exactly `wrong` mistakes: accuracy 0.80
    else:
        labels = (2.0 * X[:, 0] + np.random.default_rng(8).normal(scale=0.5, size=N_ROWS))
        labels = labels.round(4)
    return X, labels, model


def _csv(X, labels, target="churned") -> bytes:
    lines = [",".join([*helpers.FEATURES, target])]
    lines += [",".join([*(str(v) for v in row), str(label)]) for row, label in
               zip(X, labels, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def _register(actor, version="1.0.0", *, kind="logreg", labelled=True, extra=(), **meta):
    X, labels, model = _sample(kind)
    files = [store.ingest_stream(io.BytesIO(helpers.sklearn_bytes(kind)), name="model.joblib",
                                 role="model")]
    files += [store.ingest_stream(io.BytesIO(data), name=name, role="other")
              for name, data in extra]
    if labelled is not None:
        data = _csv(X, labels) if labelled else _csv(X, labels, target="other")
        files.append(store.ingest_stream(io.BytesIO(data), name="reference.csv",
                                         role="reference"))
    version = registry_services.version_register(
        model_name=("churn_prediction" if kind == "logreg" else "visits_forecast"),
        version=version, framework="sklearn", metadata=helpers.metadata(**meta), files=files,
        actor=actor)
    run = ValidationRun.objects.filter(version=version).latest("pk")
    assert run.finished
    return ModelVersion.objects.get(pk=version.pk), run, (X, labels, model)


def _near(value):
    return pytest.approx(value, abs=1e-6)  # metrics are kept to 6 decimals


def _checks(run) -> dict:
    return {c.name: (c.status, c.detail) for c in run.checks.all()}


@pytest.fixture
def forecast_model(data_scientist):
    return helpers.create_model(owner=data_scientist, name="visits_forecast",
                                task_type="regression")


def test_measured_accuracy_and_confusion_matrix_equal_scikit_learns(data_scientist,
                                                                    churn_model):
    version, run, (X, labels, model) = _register(data_scientist, metrics={"accuracy": 0.8})
    predicted = model.predict(X)
    measured = version.evaluation["metrics"]
    assert measured["accuracy"] == _near(sk.accuracy_score(labels, predicted))
    assert measured["accuracy"] == _near(0.80)
    assert version.evaluation["confusion_matrix"]["matrix"] == \
        sk.confusion_matrix(labels, predicted, labels=[0, 1]).tolist()
    assert measured["precision"] == _near(sk.precision_score(labels, predicted))
    assert measured["recall"] == _near(sk.recall_score(labels, predicted))
    assert measured["f1_score"] == _near(sk.f1_score(labels, predicted))
    probabilities = model.predict_proba(X)
    assert measured["auc_roc"] == _near(sk.roc_auc_score(labels, probabilities[:, 1]))
    assert measured["log_loss"] == _near(sk.log_loss(labels, probabilities))
    assert version.evaluation["n_rows"] == N_ROWS
    assert {row["feature"] for row in version.evaluation["feature_importance"]} == \
        set(helpers.FEATURES)
    checks = _checks(run)
    assert checks["measured_evaluation"][0] == "passed"
    assert checks["claimed_metrics"][0] == "passed"
    assert run.status == "passed"


def test_the_files_are_in_evaluation_with_their_sha256_rows(data_scientist, churn_model,
                                                           store_root):
    version, run, _ = _register(data_scientist)
    rows = {f.filename: f for f in version.files.all() if f.role == "evaluation"}
    assert sorted(rows) == sorted(f"evaluation/{name}" for name in ["metrics.json", *PLOTS])
    folder = Path(store_root) / "experiments/churn_prediction/v1.0.0"
    for name, row in rows.items():
        assert store.hash_file(folder / name) == (row.sha256, row.size)
    assert (folder / "evaluation/confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    document = json.loads((folder / "evaluation/metrics.json").read_text())
    assert document["metrics"] == version.evaluation["metrics"]
    metadata = json.loads((folder / store.METADATA_FILENAME).read_text())
    assert metadata["evaluation"]["metrics"] == version.evaluation["metrics"]
    assert {f["name"] for f in metadata["files"]} >= set(rows)
    assert version.evaluation["run"] == run.pk
    event = AuditEvent.objects.get(action="version.evaluation_recorded")
    assert json.loads(event.after)["files"] == {name: row.sha256 for name, row in rows.items()}
    # The checksum check of the next run verifies them like every artifact.
    again = services.validation_request_now(version)
    assert _checks(again)["checksum"] == ("passed", f"{len(version.files.all())} file(s) "
                                          "match their registered sha256")
    (folder / "evaluation/roc_curve.png").write_bytes(b"changed")
    tampered = services.validation_request_now(version)
    assert _checks(tampered)["checksum"][0] == "failed"
    assert "evaluation/roc_curve.png" in _checks(tampered)["checksum"][1]


def test_a_claim_of_095_on_a_model_measuring_080_fails_claimed_metrics(data_scientist,
                                                                     churn_model):
    version, run, _ = _register(data_scientist, metrics={"accuracy": 0.95})
    status, detail = _checks(run)["claimed_metrics"]
    assert status == "failed"
    assert "accuracy claimed 0.95, measured 0.8" in detail
    assert run.status == "failed"
    assert "claimed_metrics" in run.summary


def test_a_claim_within_tolerance_passes(data_scientist, churn_model, strict_policy):
    strict_policy(claimed_metrics_tolerance=0.02)
    _, run, _ = _register(data_scientist, metrics={"accuracy": 0.81})
    assert _checks(run)["claimed_metrics"][0] == "passed"


def test_a_policy_that_does_not_block_makes_it_a_warning(data_scientist, churn_model,
                                                        strict_policy):
    strict_policy(claimed_metrics_blocks=False)
    _, run, _ = _register(data_scientist, metrics={"accuracy": 0.95})
    status, detail = _checks(run)["claimed_metrics"]
    assert status == "warning"
    assert "a warning under this policy" in detail
    assert run.status == "passed"
    assert "warning: claimed_metrics" in run.summary


def test_a_policy_that_requires_a_measured_evaluation_fails_without_labels(
        data_scientist, churn_model, strict_policy):
    strict_policy(require_measured_evaluation=True)
    version, run, _ = _register(data_scientist, labelled=False)
    status, detail = _checks(run)["measured_evaluation"]
    assert status == "failed"
    assert "the policy requires a measured evaluation" in detail
    assert "no target column ('churned')" in detail
    assert run.status == "failed"
    assert not version.evaluation
    assert not ArtifactFile.objects.filter(role="evaluation").exists()


def test_without_labels_and_no_requirement_it_is_skipped(data_scientist, churn_model):
    _, run, _ = _register(data_scientist, labelled=None)
    checks = _checks(run)
    assert checks["measured_evaluation"] == ("skipped",
                                             "the version has no usable reference sample")
    assert checks["claimed_metrics"][0] == "skipped"
    assert run.status == "passed"


def test_regression_metrics_equal_scikit_learns(data_scientist, forecast_model):
    version, run, (X, labels, model) = _register(data_scientist, kind="linreg",
                                                 metrics={"rmse": 0.5})
    predicted = model.predict(X)
    measured = version.evaluation["metrics"]
    assert measured["mae"] == _near(sk.mean_absolute_error(labels, predicted))
    assert measured["rmse"] == _near(np.sqrt(sk.mean_squared_error(labels, predicted)))
    assert measured["r2"] == _near(sk.r2_score(labels, predicted))
    assert version.evaluation["task"] == "regression"
    names = {f.filename for f in version.files.all() if f.role == "evaluation"}
    assert names == {"evaluation/metrics.json", "evaluation/predicted_vs_actual.png",
                     "evaluation/feature_importance.png"}
    # A claimed rmse of 0.5 against a measured one near 0.5: within 2 % or not, it is judged.
    assert _checks(run)["claimed_metrics"][0] in ("passed", "failed")
    assert _checks(run)["measured_evaluation"][0] == "passed"


def test_labels_and_classes_compare_whatever_their_spelling():
    assert evaluation.label("1.0") == evaluation.label(1) == evaluation.label(True) == "1"
    assert evaluation.label(" yes ") == "yes"
    assert evaluation.measured_name("AUC") == "auc_roc"
    assert evaluation.measured_name("f1") == "f1_score"


@pytest.mark.parametrize("predictions, permuted", [
    ([10**400, 1.0, 2.0], None),          # a number no float holds
    ([1.0, 2.0, 3.0], [[10**400, 1.0, 2.0]]),  # ... in a permuted column
])
def test_hostile_regression_answers_are_refused_not_a_crash(predictions, permuted):
    # The sandbox's answers are the artifact's: an integer too large for a float is "could
    # not be scored" (ValueError), not an OverflowError that crashes the validation run.
    with pytest.raises(ValueError):
        evaluation.evaluate(task_type="regression", y_true=["1", "2", "3.5"],
                            predictions=predictions, permuted=permuted, feature_names=["x"])


def test_a_sandbox_report_with_numbers_no_float_holds_is_read_not_raised():
    # The report is what the artifact's process wrote: JSON integers of any size. Reading it
    # never raises (sandbox.run "never raises for anything the artifact does").
    from governance import sandbox

    huge = 10**400
    raw = {"isolation": {"level": "full", "layers": []}, "load": {"ok": True, "seconds": huge},
           "peak_rss_mb": huge,
           "evaluation": {"ok": True, "predictions": [huge, 1], "classes": [0, 1],
                          "probabilities": [[huge, 0], [0, 1]], "permuted": [[1, huge]]},
           "answer": {"ok": True, "predictions": [1], "probabilities": [[huge]]}}
    job = {"evaluation_rows": [[1.0], [2.0]], "rows": [[1.0]]}
    data = sandbox._report(raw, "", "", job).data
    assert data["load"]["seconds"] == 0.0 and data["peak_rss_mb"] == 0.0
    assert data["evaluation"]["ok"] is False
    assert data["answer"]["ok"] is False


def test_a_report_of_empty_arrays_is_refused_before_it_is_read():
    # 64 MB of "[]," would be ~1.6 GB of lists in the worker: a large report holds no more
    # arrays than its rows explain. A large honest one (a row of probabilities per row) is read.
    from governance import sandbox

    job = {"rows": [[1.0, 2.0]] * 3, "evaluation_rows": [[1.0, 2.0]] * 3}
    bomb = json.dumps({"answer": {"ok": True, "predictions": [[]] * 1_000_000}})
    assert len(bomb) > sandbox.CHECKED_REPORT_CHARS
    with pytest.raises(ValueError):
        sandbox.read_report(bomb, job)
    rows = [[0.5] * 2] * 50_000
    honest = {"answer": {"ok": True, "predictions": [0] * 50_000,
                         "probabilities": [[0.123456789, 0.876543211]] * 50_000}}
    line = json.dumps(honest)
    assert len(line) > sandbox.CHECKED_REPORT_CHARS
    assert sandbox.read_report(line, {"rows": rows}) == honest


@pytest.mark.timeout(120)
def test_answers_with_a_thousand_labels_are_plotted_without_a_text_per_cell():
    # An artifact's answers choose the labels: 1,000 distinct ones drew a million texts in
    # the confusion matrix (hours of the validation worker). Past MAX_LABELLED_CLASSES the
    # matrix is drawn bare; its counts stay in the summary.
    n = 1000
    result = evaluation.evaluate(task_type="classification", y_true=["a"] * n,
                                 predictions=[f"label {i}" for i in range(n)],
                                 feature_names=["x"])
    assert result.files["confusion_matrix.png"].startswith(b"\x89PNG")
    assert len(result.summary["confusion_matrix"]["labels"]) == n + 1


def test_version_file_allows_only_the_evaluation_folder(store_root):
    folder = Path(store_root)
    assert store.version_file(folder, "evaluation/metrics.json") == \
        folder / "evaluation/metrics.json"
    for bad in ["../x", "evaluation/../x", "other/x.png", "evaluation/a/b", "/etc/passwd",
                "evaluation/", "evaluation/..", "a\\b"]:
        with pytest.raises(store.UnsafeName):
            store.version_file(folder, bad)


# --- who sees the images, and where ------------------------------------------------------------

URL = "/api/v1/models/churn_prediction/versions/1.0.0/files/evaluation/confusion_matrix.png"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


def test_an_outsider_cannot_fetch_the_images(api, client, data_scientist, outsider,
                                             other_data_scientist, churn_model):
    from registry.models import Team

    version, _, _ = _register(data_scientist, metrics={"accuracy": 0.8})
    # A data scientist of another team does not learn that the version exists.
    Team.objects.create(name="growth").members.add(other_data_scientist)
    assert api(other_data_scientist).get(URL).status_code == 404
    row = version.files.get(filename="evaluation/confusion_matrix.png")
    refused = api(outsider).get(URL)
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/json"
    assert api().get(URL).status_code in (401, 403)
    client.force_login(outsider)
    assert client.get(URL).status_code == 403
    response = api(data_scientist).get(URL)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert helpers.sha256(body) == row.sha256 == response["X-Checksum-SHA256"]
    assert response["Content-Type"] == "image/png"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not response["Content-Disposition"].startswith("attachment")
    # Nothing else under the version folder is reachable by a path.
    for bad in ("evaluation/../model.joblib", "../v1.0.0/model.joblib", "evaluation/x.png"):
        assert api(data_scientist).get(URL.replace("evaluation/confusion_matrix.png",
                                                   bad)).status_code == 404


def test_a_file_named_png_that_is_not_one_is_sent_as_a_download(api, data_scientist,
                                                                churn_model):
    _register(data_scientist, metrics={"accuracy": 0.8},
              extra=[("figure.png", b"<script>alert(1)</script>")])
    response = api(data_scientist).get(
        "/api/v1/models/churn_prediction/versions/1.0.0/files/figure.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_the_version_page_shows_the_measured_evaluation_and_uploaded_images(
        client, approver, data_scientist, churn_model):
    version, _, _ = _register(data_scientist, metrics={"accuracy": 0.8},
                              extra=[("lift_chart.png", PNG)])
    client.force_login(approver)
    page = client.get(f"/admin/registry/modelversion/{version.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Measured evaluation" in text
    assert '<tr data-metric="accuracy"><td>accuracy</td><td class="num">0.8000</td>' in text
    for name in PLOTS:
        assert f'<img src="/api/v1/models/churn_prediction/versions/1.0.0/files/evaluation/{name}"' \
            in text
    assert '<img src="/api/v1/models/churn_prediction/versions/1.0.0/files/lift_chart.png"' in text
    # The page's images load with the same session.
    image = client.get(URL)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    uploaded = client.get("/api/v1/models/churn_prediction/versions/1.0.0/files/lift_chart.png")
    assert uploaded["Content-Type"] == "image/png"


def test_the_review_page_shows_candidate_and_production_evaluations_side_by_side(
        api, client, approver, data_scientist, churn_model):
    production, _, _ = _register(data_scientist, "1.0.0", metrics={"accuracy": 0.8})
    helpers.force_stage(production, "production")
    candidate, _, _ = _register(data_scientist, "1.1.0", metrics={"accuracy": 0.8})
    helpers.force_stage(candidate, "staging")
    response = api(data_scientist).post(
        "/api/v1/models/churn_prediction/versions/1.1.0/transitions/",
        {"to_stage": "production", "reason": "measured"}, format="json")
    assert response.status_code == 202, response.json()
    client.force_login(approver)
    page = client.get(
        f"/admin/governance/approvalrequest/{response.json()['request']['id']}/change/")
    text = page.content.decode()
    assert 'id="evaluation-comparison"' in text
    side_by_side = text.split('id="evaluation-comparison"', 1)[1]
    candidate_at = side_by_side.index('data-version="1.1.0"')
    production_at = side_by_side.index('data-version="1.0.0"')
    assert candidate_at < production_at
    for version in ("1.1.0", "1.0.0"):
        assert (f'<img src="/api/v1/models/churn_prediction/versions/{version}/files/'
                'evaluation/roc_curve.png"') in side_by_side
    assert "<td>claimed_metrics</td>" in text


def test_an_evaluation_refused_while_a_deployment_moves_the_folder_changes_nothing(
        data_scientist, churn_model):
    from core.errors import Conflict
    from governance.evaluation import Evaluation

    version, _, _ = _register(data_scientist, metrics={"accuracy": 0.8})
    ModelVersion.objects.filter(pk=version.pk).update(moving_by_deployment=99)
    before_rows, before_store = helpers.row_counts(), helpers.store_snapshot()
    replacement = Evaluation({"metrics": {"accuracy": 0.1}},
                             {"metrics.json": b"{}\n", "confusion_matrix.png": PNG})
    with pytest.raises(Conflict, match="deployment #99 is moving"):
        services.evaluation_record(version=version, evaluation=replacement)
    assert helpers.row_counts() == before_rows
    assert helpers.store_snapshot() == before_store
