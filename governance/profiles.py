"""The profile of a version's reference sample: what its live traffic will be compared with.

Built by validation from the reference rows and the model's predictions on them (in the
sandbox). Numeric features keep their inner decile edges, counts and a sorted subsample (for
the Kolmogorov-Smirnov test); categorical ones their category counts.
"""

from __future__ import annotations

import numpy as np

from registry.metadata import NUMERIC_DTYPES

NUMERIC = NUMERIC_DTYPES
BINS = 10
SAMPLE_SIZE = 5000
OTHER = "(other)"  # categories the reference never saw


def numeric_profile(values: np.ndarray, *, seed: int = 0) -> dict:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"kind": "numeric", "n": 0, "missing": int(values.size), "edges": [],
                "counts": [0], "sample": []}
    # Inner decile edges; repeated values (a count, a flag) give fewer, wider bins.
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, finite, side="right"),
                         minlength=edges.size + 1)
    sample = finite
    if finite.size > SAMPLE_SIZE:
        sample = np.random.default_rng(seed).choice(finite, SAMPLE_SIZE, replace=False)
    return {
        "kind": "numeric", "n": int(finite.size), "missing": int(values.size - finite.size),
        "edges": edges.tolist(), "counts": counts.tolist(), "sample": np.sort(sample).tolist(),
        "mean": float(finite.mean()), "std": float(finite.std()),
        "min": float(finite.min()), "max": float(finite.max()),
    }


def categorical_profile(values) -> dict:
    labels, counts = np.unique(np.asarray(values).astype(str), return_counts=True)
    return {"kind": "categorical", "n": int(counts.sum()),
            "counts": {str(k): int(v) for k, v in zip(labels, counts, strict=True)}}


def feature_profiles(columns: dict[str, np.ndarray], signature: list[dict]) -> dict:
    return {c["name"]: (numeric_profile(columns[c["name"]]) if c["dtype"] in NUMERIC
                        else categorical_profile(columns[c["name"]])) for c in signature}


def prediction_profile(predictions, task_type: str) -> dict | None:
    """Classes and clusters as categories; scores, amounts and forecasts as numbers."""
    if predictions is None or len(predictions) == 0:
        return None
    if categorical_predictions(task_type):
        return categorical_profile(predictions)
    return numeric_profile(np.asarray(predictions, dtype=np.float64).ravel())


def categorical_predictions(task_type: str) -> bool:
    return task_type in ("classification", "clustering")
