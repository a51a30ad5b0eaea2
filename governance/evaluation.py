"""Measured evaluation: a version's metrics and plots on its labelled sample.

The model only ever runs in the sandbox (governance.sandbox): it hands back its predictions,
probabilities and classes on the labelled rows, and its predictions with each column shuffled
in turn. Everything here is computed from those arrays and the labels, which never enter the
sandbox, with scikit-learn; the plots use matplotlib's object-oriented API on the Agg canvas
(no pyplot, so no global figure state shared between threads of a worker).

Names follow seed 001's metrics.json: accuracy, precision, recall, f1_score, auc_roc (and
log_loss) for classification; mae, rmse, r2 (and mape) for regression.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field

import numpy as np

CLASSIFICATION_TASKS = ("classification",)
REGRESSION_TASKS = ("regression", "forecasting")
# A claimed metric may use another common name for a measured one.
ALIASES = {
    "f1_score": ("f1", "f1score", "f1_macro", "f1_weighted"),
    "auc_roc": ("auc", "roc_auc", "rocauc", "roc_auc_score"),
    "log_loss": ("logloss", "cross_entropy"),
    "r2": ("r2_score", "r_squared", "rsquared"),
    "mae": ("mean_absolute_error",),
    "rmse": ("root_mean_squared_error",),
    "mape": ("mean_absolute_percentage_error",),
}
MAX_CURVE_CLASSES = 10
MAX_LABELLED_CLASSES = 30  # a confusion matrix with more is drawn without its labels
PNG_DPI = 100


def measurable(task_type: str) -> bool:
    return task_type in CLASSIFICATION_TASKS + REGRESSION_TASKS


def label(value) -> str:
    """One spelling per class: 1, 1.0, "1" and "1.0" are the same class; True is 1."""
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return text
        value = number
    if isinstance(value, float | np.floating) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return str(value)


def measured_name(claimed: str) -> str:
    """The measured metric a claimed name stands for (itself when it is not an alias)."""
    lower = claimed.lower()
    for name, aliases in ALIASES.items():
        if lower == name or lower in aliases:
            return name
    return lower


@dataclass
class Evaluation:
    """What validation measured: the summary (metrics.json and version.evaluation) and the
    files to keep under the version folder's evaluation/, by name."""

    summary: dict
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def metrics(self) -> dict:
        return self.summary["metrics"]


def evaluate(*, task_type: str, y_true, predictions, probabilities=None, classes=None,
             permuted=None, feature_names: list[str], sample: dict | None = None) -> Evaluation:
    """Metrics, confusion matrix, curves and permutation importance from the sandbox's arrays.

    `y_true` are the labels as read from the sample (text); `permuted[j]` the predictions with
    column j shuffled. Raises ValueError when the arrays cannot be scored.
    """
    if task_type in CLASSIFICATION_TASKS:
        return _classification(y_true, predictions, probabilities, classes, permuted,
                                feature_names, sample or {})
    if task_type in REGRESSION_TASKS:
        return _regression(y_true, predictions, permuted, feature_names, sample or {})
    raise ValueError(f"a {task_type} model has no measured evaluation")


def _rounded(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


def _importance(base: float, permuted, score, feature_names) -> list[dict]:
    if not permuted:
        return []
    rows = [{"feature": name, "importance": _rounded(base - score(column))}
            for name, column in zip(feature_names, permuted, strict=True)]
    return sorted(rows, key=lambda row: -(row["importance"] or 0))


def _classification(y_true, predictions, probabilities, classes, permuted, feature_names,
                    sample) -> Evaluation:
    from sklearn import metrics as sk

    y = np.asarray([label(v) for v in y_true], dtype=object)
    predicted = np.asarray([label(v) for v in predictions], dtype=object)
    if len(y) != len(predicted) or not len(y):
        raise ValueError("one prediction per labelled row is needed")
    names = ([label(c) for c in classes] if classes
             else sorted(set(y) | set(predicted)))
    seen = set(y) | set(predicted)
    names += sorted(seen - set(names))  # a label the model never predicts still counts
    binary = len(names) == 2
    average = "binary" if binary else "weighted"
    positive = names[1] if binary else None
    scored = {"average": average}
    if binary:
        scored["pos_label"] = positive
    values = {
        "accuracy": sk.accuracy_score(y, predicted),
        "precision": sk.precision_score(y, predicted, zero_division=0, labels=names, **scored),
        "recall": sk.recall_score(y, predicted, zero_division=0, labels=names, **scored),
        "f1_score": sk.f1_score(y, predicted, zero_division=0, labels=names, **scored),
    }
    proba = None
    if probabilities is not None and classes and len(probabilities) == len(y):
        proba = np.asarray(probabilities, dtype=np.float64)
        class_names = [label(c) for c in classes]
        present = set(y)
        if binary and len(present) == 2:
            values["auc_roc"] = sk.roc_auc_score(y == positive, proba[:, 1])
        elif len(present) == len(class_names) and present <= set(class_names):
            values["auc_roc"] = sk.roc_auc_score(y, proba, multi_class="ovr",
                                                 labels=class_names)
        if present <= set(class_names):
            values["log_loss"] = sk.log_loss(y, np.clip(proba, 1e-15, 1), labels=class_names)
    matrix = sk.confusion_matrix(y, predicted, labels=names)
    importance = _importance(values["accuracy"], permuted,
                             lambda column: sk.accuracy_score(
                                 y, np.asarray([label(v) for v in column], dtype=object)),
                             feature_names)
    summary = {
        "task": "classification",
        "n_rows": int(len(y)),
        "metrics": {name: _rounded(value) for name, value in values.items()},
        "average": average,
        "positive_class": positive,
        "classes": names,
        "confusion_matrix": {"labels": names, "matrix": matrix.tolist()},
        "feature_importance": importance,
        "importance_method": "permutation: accuracy drop with one column shuffled (one "
                             "shuffle per column, seed 0)",
        "sample": sample,
    }
    files = {"confusion_matrix.png": _confusion_plot(matrix, names)}
    if proba is not None:
        class_names = [label(c) for c in classes]
        files["roc_curve.png"] = _roc_plot(y, proba, class_names, values.get("auc_roc"))
        files["pr_curve.png"] = _pr_plot(y, proba, class_names)
        files["calibration_curve.png"] = _calibration_plot(y, proba, class_names)
    if importance:
        files["feature_importance.png"] = _importance_plot(importance, "accuracy drop")
    return _finish(summary, files)


def _regression(y_true, predictions, permuted, feature_names, sample) -> Evaluation:
    from sklearn import metrics as sk

    try:
        y = np.asarray([float(v) for v in y_true], dtype=np.float64)
        predicted = np.asarray(predictions, dtype=np.float64)
        # The sandbox's answers are the artifact's: an int no float holds is OverflowError.
        permuted = [np.asarray(column, dtype=np.float64) for column in permuted or []]
    except (TypeError, ValueError, OverflowError):
        raise ValueError("a regression sample needs numeric labels and predictions") from None
    if len(y) != len(predicted) or not len(y):
        raise ValueError("one prediction per labelled row is needed")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(predicted))):
        raise ValueError("labels or predictions are not finite numbers")
    values = {
        "mae": sk.mean_absolute_error(y, predicted),
        "rmse": math.sqrt(sk.mean_squared_error(y, predicted)),
        "r2": sk.r2_score(y, predicted) if len(y) > 1 else math.nan,
    }
    if np.all(y != 0):
        values["mape"] = sk.mean_absolute_percentage_error(y, predicted)

    def score(column):
        return sk.r2_score(y, column)

    importance = _importance(values["r2"], permuted, score, feature_names) \
        if math.isfinite(values["r2"]) else []
    summary = {
        "task": "regression",
        "n_rows": int(len(y)),
        "metrics": {name: _rounded(value) for name, value in values.items()},
        "feature_importance": importance,
        "importance_method": "permutation: R² drop with one column shuffled (one shuffle per "
                             "column, seed 0)",
        "sample": sample,
    }
    files = {"predicted_vs_actual.png": _scatter_plot(y, predicted)}
    if importance:
        files["feature_importance.png"] = _importance_plot(importance, "R² drop")
    return _finish(summary, files)


def _finish(summary: dict, files: dict[str, bytes]) -> Evaluation:
    summary["plots"] = sorted(files)
    metrics_json = json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return Evaluation(summary, {"metrics.json": metrics_json.encode(), **files})


# --- plots: matplotlib's object-oriented API on the Agg canvas ------------------------------


def _figure(width=6.0, height=4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=PNG_DPI, layout="tight")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _png(figure) -> bytes:
    out = io.BytesIO()
    # No "Software" key: the same figures give the same bytes (and sha256) on every run.
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def _confusion_plot(matrix: np.ndarray, names: list[str]) -> bytes:
    size = min(2 + 0.6 * len(names), 12)
    figure, axes = _figure(size + 1, size)
    image = axes.imshow(matrix, interpolation="nearest", cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set(xlabel="Predicted label", ylabel="True label", title="Confusion matrix")
    if len(names) > MAX_LABELLED_CLASSES:
        # One text per cell is quadratic (200 labels took 40 s, 2,000 over an hour): past
        # the limit the matrix is drawn without its labels and counts (they are in the JSON).
        return _png(figure)
    axes.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names,
             yticklabels=names)
    limit = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center",
                  color="white" if count > limit else "black")
    return _png(figure)


def _one_vs_rest(y, proba, names):
    """(name, truth, score) per class: the positive class alone when binary."""
    if len(names) == 2:
        return [(names[1], y == names[1], proba[:, 1])]
    return [(name, y == name, proba[:, i]) for i, name in enumerate(names[:MAX_CURVE_CLASSES])
            if 0 < np.sum(y == name) < len(y)]


def _roc_plot(y, proba, names, auc) -> bytes:
    from sklearn.metrics import roc_auc_score, roc_curve

    figure, axes = _figure()
    for name, truth, score in _one_vs_rest(y, proba, names):
        if 0 < truth.sum() < len(truth):
            fpr, tpr, _ = roc_curve(truth, score)
            area = roc_auc_score(truth, score)
            axes.plot(fpr, tpr, lw=2, label=f"{name} (AUC = {area:.3f})")
    axes.plot([0, 1], [0, 1], color="grey", lw=1, linestyle="--")
    title = "ROC curve" + (f" (AUC {auc:.3f})" if auc is not None else "")
    axes.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="False positive rate",
             ylabel="True positive rate", title=title)
    axes.legend(loc="lower right")
    return _png(figure)


def _pr_plot(y, proba, names) -> bytes:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    figure, axes = _figure()
    for name, truth, score in _one_vs_rest(y, proba, names):
        if 0 < truth.sum():
            precision, recall, _ = precision_recall_curve(truth, score)
            ap = average_precision_score(truth, score)
            axes.plot(recall, precision, lw=2, label=f"{name} (AP = {ap:.3f})")
    axes.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="Recall", ylabel="Precision",
             title="Precision-recall curve")
    axes.legend(loc="lower left")
    return _png(figure)


def _calibration_plot(y, proba, names) -> bytes:
    from sklearn.calibration import calibration_curve

    figure, axes = _figure()
    if len(names) == 2:
        truth, score, what = y == names[1], proba[:, 1], f"P({names[1]})"
    else:  # top-label calibration: is the most probable class right as often as it claims?
        top = np.argmax(proba, axis=1)
        truth = np.asarray(names, dtype=object)[top] == y
        score, what = proba[np.arange(len(y)), top], "probability of the predicted class"
    if 0 < truth.sum() < len(truth):
        observed, predicted = calibration_curve(truth, score, n_bins=10, strategy="uniform")
        axes.plot(predicted, observed, marker="o", lw=2, label="model")
    axes.plot([0, 1], [0, 1], color="grey", lw=1, linestyle="--", label="perfectly calibrated")
    axes.set(xlim=(0, 1), ylim=(0, 1.05), xlabel=f"Mean predicted {what}",
             ylabel="Observed frequency", title="Calibration curve")
    axes.legend(loc="upper left")
    return _png(figure)


def _importance_plot(importance: list[dict], unit: str) -> bytes:
    shown = importance[:20][::-1]
    figure, axes = _figure(6.5, max(2.5, 0.35 * len(shown) + 1.2))
    axes.barh([row["feature"] for row in shown], [row["importance"] or 0 for row in shown],
              color="#4c72b0")
    axes.axvline(0, color="grey", lw=1)
    axes.set(xlabel=unit, title="Permutation feature importance")
    return _png(figure)


def _scatter_plot(y, predicted) -> bytes:
    figure, axes = _figure(5.5, 5)
    axes.scatter(y, predicted, s=8, alpha=0.5)
    low, high = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    axes.plot([low, high], [low, high], color="grey", lw=1, linestyle="--")
    axes.set(xlabel="Actual", ylabel="Predicted", title="Predicted vs actual")
    return _png(figure)
