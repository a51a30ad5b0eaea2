"""Generated traffic for monitoring tests: a reference sample and logged windows."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from predictions.models import PredictionLog

SIGNATURE = [{"name": "tenure", "dtype": "float64"}, {"name": "visits", "dtype": "float64"},
             {"name": "fines", "dtype": "float64"}, {"name": "branch", "dtype": "category"}]
BRANCHES = np.array(["north", "south", "east"])
REFERENCE_ROWS = 5000
WINDOW_ROWS = 2000


def _columns(rng, n, *, shift_tenure=0.0, branch_p=(0.5, 0.3, 0.2)):
    return {
        "tenure": rng.normal(24 + shift_tenure * 6, 6, n),
        "visits": rng.poisson(3, n).astype(float),
        "fines": rng.exponential(2.0, n),
        "branch": rng.choice(BRANCHES, n, p=list(branch_p)),
    }


def make_monitored(data_scientist):
    """A classification model in production with a reference profile of 5,000 rows."""
    from governance import services
    from registry import reference
    from tests import helpers

    helpers.create_model(owner=data_scientist, name="loans")
    meta = helpers.metadata(signature=SIGNATURE, metrics={"accuracy": 0.85})
    meta.pop("features", None)
    version = helpers.register_direct("loans", "1.0.0", actor=data_scientist, meta=meta)
    helpers.force_stage(version, "production")
    rng = np.random.default_rng(1234)
    columns = _columns(rng, REFERENCE_ROWS)
    data = reference.ReferenceData(n_rows=REFERENCE_ROWS, columns=columns)
    services.reference_profile_save(version=version, sha256="0" * 64, data=data,
                                    predictions=rng.integers(0, 2, REFERENCE_ROWS))
    return version


def log_window(version, *, end, seed, rows=WINDOW_ROWS, per_request=10, latency_ms=3.0,
               **shape):
    """Logged traffic of `rows` rows in the hour before `end`, as the prediction API logs it."""
    rng = np.random.default_rng(seed)
    columns = _columns(rng, rows, **shape)
    outputs = rng.integers(0, 2, rows)
    entries = []
    for start in range(0, rows, per_request):
        stop = min(rows, start + per_request)
        entries.append(PredictionLog(
            request_id=f"s{seed}-{start}", model=version.model, version=version,
            route="production", caller_name="loans-service",
            created_at=end - timedelta(minutes=59) + timedelta(seconds=start * 3000 / rows),
            n_rows=stop - start, row_indices=list(range(stop - start)),
            inputs=[[float(columns["tenure"][i]), float(columns["visits"][i]),
                     float(columns["fines"][i]), str(columns["branch"][i])]
                    for i in range(start, stop)],
            outputs=outputs[start:stop].tolist(), latency_ms=latency_ms))
    PredictionLog.objects.bulk_create(entries)
    return entries
