"""The statistics of monitoring: drift, live performance, latency.

Plain NumPy and SciPy on arrays; no database here (services.monitoring_pass reads the
traffic and records the results). Numeric features are compared on the reference's decile
bins (PSI, Jensen-Shannon) and with the two-sample Kolmogorov-Smirnov test against a sorted
subsample of the reference (governance.profiles); categorical ones on category frequencies
(PSI, Jensen-Shannon, chi-square). Alerts use effect sizes; p-values are shown as evidence,
and a KS rule also needs p < KS_ALPHA so that a small window's noise cannot raise it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from registry.metadata import is_lower_better

EPSILON = 1e-4  # floor of a bin's share in PSI, so that an empty bin is not infinite
KS_ALPHA = 0.01


# --- drift ------------------------------------------------------------------------------------


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    e = np.clip(expected / max(expected.sum(), 1), EPSILON, None)
    a = np.clip(actual / max(actual.sum(), 1), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: np.ndarray, actual: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, from 0 to 1) of two count vectors."""
    if expected.sum() == 0 or actual.sum() == 0:
        return 0.0
    return float(jensenshannon(expected / expected.sum(), actual / actual.sum(), base=2))


def numeric_drift(profile: dict, current: np.ndarray) -> dict | None:
    current = np.asarray(current, dtype=np.float64)
    finite = current[np.isfinite(current)]
    if finite.size == 0 or not profile.get("n"):
        return None
    edges = np.asarray(profile["edges"], dtype=np.float64)
    expected = np.asarray(profile["counts"], dtype=np.float64)
    actual = np.bincount(np.searchsorted(edges, finite, side="right"),
                         minlength=edges.size + 1).astype(np.float64)
    ks = stats.ks_2samp(np.asarray(profile["sample"], dtype=np.float64), finite)
    return {
        "kind": "numeric", "n": int(finite.size), "psi": round(psi(expected, actual), 6),
        "ks": round(float(ks.statistic), 6), "ks_pvalue": float(ks.pvalue),
        "js": round(js_distance(expected, actual), 6),
        "mean": float(finite.mean()), "reference_mean": profile.get("mean"),
        "std": float(finite.std()), "reference_std": profile.get("std"),
        "missing": int(current.size - finite.size),
    }


def categorical_drift(profile: dict, current) -> dict | None:
    current = np.asarray(current).astype(str)
    if current.size == 0 or not profile.get("n"):
        return None
    categories = list(profile["counts"])
    labels, counts = np.unique(current, return_counts=True)
    seen = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    unseen = sum(n for label, n in seen.items() if label not in profile["counts"])
    expected = np.asarray([profile["counts"][c] for c in categories] + [0], dtype=np.float64)
    actual = np.asarray([seen.get(c, 0) for c in categories] + [unseen], dtype=np.float64)
    table = np.vstack([expected, actual])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] > 1:
        chi2, pvalue, _dof, _expected = stats.chi2_contingency(table)
    else:
        chi2, pvalue = 0.0, 1.0
    shares = {c: round(seen.get(c, 0) / current.size, 4) for c in categories}
    return {
        "kind": "categorical", "n": int(current.size), "psi": round(psi(expected, actual), 6),
        "js": round(js_distance(expected, actual), 6), "chi2": round(float(chi2), 4),
        "chi2_pvalue": float(pvalue), "unseen": int(unseen), "shares": shares,
        "reference_shares": {c: round(profile["counts"][c] / profile["n"], 4)
                             for c in categories},
    }


def drift(profile: dict, current) -> dict | None:
    if profile["kind"] == "numeric":
        return numeric_drift(profile, current)
    return categorical_drift(profile, current)


def statistic_value(figures: dict, statistic: str) -> float | None:
    """The effect size a drift rule reads; None where it does not apply (KS of a category)."""
    value = figures.get(statistic)
    if value is None:
        return None
    if statistic == "ks" and figures.get("ks_pvalue", 0.0) >= KS_ALPHA:
        return 0.0  # a KS statistic that is not significant is no evidence of drift
    return float(value)


# --- live performance -------------------------------------------------------------------------


def classification_performance(actual, predicted, probabilities=None) -> dict:
    from sklearn import metrics

    y_true = np.asarray([_label(v) for v in actual])
    y_pred = np.asarray([_label(v) for v in predicted])
    # In the classes' own order (9 before 10): sklearn's probability columns follow it.
    classes = sorted(set(y_true) | set(y_pred), key=_class_order)
    out = {"n": int(y_true.size), "accuracy": float(metrics.accuracy_score(y_true, y_pred))}
    binary = len(classes) <= 2
    positive = classes[-1] if classes else None
    average = "binary" if binary and len(classes) == 2 else "macro"
    options = {"average": average, "zero_division": 0}
    if average == "binary":
        options["pos_label"] = positive
    out["precision"] = float(metrics.precision_score(y_true, y_pred, **options))
    out["recall"] = float(metrics.recall_score(y_true, y_pred, **options))
    out["f1_score"] = float(metrics.f1_score(y_true, y_pred, **options))
    if (probabilities is not None and binary and len(set(y_true)) == 2
            and probabilities.ndim == 2 and probabilities.shape[1] == 2):
        # sklearn orders probability columns by sorted class: the second is the positive one.
        out["auc_roc"] = float(metrics.roc_auc_score(y_true == positive, probabilities[:, 1]))
    return out


def regression_performance(actual, predicted) -> dict:
    """MAE and RMSE over the rows whose outcome is a number (a label sent by mistake to a
    regressor is counted as unusable, not allowed to stop the pass)."""
    pairs = [(float(a), float(p)) for a, p in zip(actual, predicted, strict=True)
             if _number(a) and _number(p)]
    if not pairs:
        return {"n": 0, "unusable": len(actual), "skipped": "no numeric outcomes"}
    y_true, y_pred = np.asarray(pairs).T
    error = y_pred - y_true
    return {"n": len(pairs), "unusable": len(actual) - len(pairs),
            "mae": float(np.mean(np.abs(error))),
            "rmse": float(math.sqrt(np.mean(error ** 2)))}


def _number(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _class_order(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _label(value):
    """1, 1.0 and "1" are one class: feedback comes as JSON, predictions as numbers."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    return str(value)


def performance_drop(metric: str, live: float, registered: float) -> float:
    """How much worse live is than registered, in the metric's units (positive = worse)."""
    return live - registered if is_lower_better(metric) else registered - live


# --- latency and errors -----------------------------------------------------------------------


def latency_figures(latency_ms: np.ndarray) -> dict:
    return {"n": int(latency_ms.size), "p50_ms": float(np.percentile(latency_ms, 50)),
            "p99_ms": float(np.percentile(latency_ms, 99)),
            "max_ms": float(latency_ms.max())}
