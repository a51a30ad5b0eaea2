"""Monitoring benchmark: one pass over 100,000 logged rows of 20 numeric and 2 categorical
features, against the floor: the same statistics computed with plain NumPy/SciPy on the same
arrays already in memory.

The pass reads the window from the database (in chunks), computes drift per feature (PSI,
KS, Jensen-Shannon; PSI, JS, chi-square for categories), prediction drift, latency and error
rate, judges the default alert rules and stores the run. The floor does only the
arithmetic. Two shapes of the same 100,000 rows: 1,000 requests of 100 rows, and 100,000
single-row requests (the realistic worst case: one log row per row).

    .venv/bin/python bench/bench_drift.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_drift .venv/bin/python bench/bench_drift.py
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from datetime import timedelta

import numpy as np
from common import remove, save, scratch_django  # noqa: E402

NUMERIC, CATEGORICAL = 20, 2
CATEGORIES = np.array(["north", "south", "east", "west", "centre"])


def _signature():
    return ([{"name": f"x{i:02d}", "dtype": "float64"} for i in range(NUMERIC)]
            + [{"name": f"c{i}", "dtype": "category"} for i in range(CATEGORICAL)])


def _rows(rng, n, shift=0.0):
    numeric = rng.normal(0, 1, (n, NUMERIC))
    numeric[:, 0] += shift
    cats = rng.choice(CATEGORIES, (n, CATEGORICAL), p=[0.4, 0.25, 0.15, 0.12, 0.08])
    return numeric, cats


def production_version(name: str, rng):
    """A validated production version of the bench forest, named `name`, with a reference
    profile of 50,000 rows drawn from `rng` (bench_logs uses it too)."""
    from django.contrib.auth import get_user_model

    from governance import services as governance
    from governance.models import RunStatus, ValidationRun
    from registry import reference, services, store

    user = get_user_model().objects.get_or_create(username="bench")[0]
    services.model_create(name=name, task_type="classification", owner=user, actor=user)
    incoming = [store.ingest_stream(_model_bytes(), name="model.joblib", role="model")]
    version = services.version_register(
        model_name=name, version="1.0.0", framework="sklearn",
        metadata={"signature": _signature(), "metrics": {"accuracy": 0.9}}, files=incoming,
        actor=user)
    ValidationRun.objects.create(version=version, trigger="manual", status=RunStatus.PASSED)
    admin = _admin()
    for stage in ("staging", "production"):
        governance.version_force_stage(version=version, to_stage=stage, actor=admin,
                                       reason="benchmark")
    ref_numeric, ref_cats = _rows(rng, 50_000)
    columns = {f"x{i:02d}": ref_numeric[:, i] for i in range(NUMERIC)}
    columns |= {f"c{i}": ref_cats[:, i] for i in range(CATEGORICAL)}
    governance.reference_profile_save(
        version=version, sha256="0" * 64,
        data=reference.ReferenceData(n_rows=50_000, columns=columns),
        predictions=rng.integers(0, 2, 50_000))
    return version


def _setup(rows: int, per_request: int, seed: int):
    from django.utils import timezone

    from predictions.models import PredictionLog

    rng = np.random.default_rng(seed)
    version = production_version(f"drift_{per_request}", rng)

    numeric, cats = _rows(rng, rows, shift=0.5)
    outputs = rng.integers(0, 2, rows)
    latency = rng.gamma(2.0, 2.0, rows // per_request)
    now = timezone.now()
    batch = []
    for request, start in enumerate(range(0, rows, per_request)):
        stop = start + per_request
        batch.append(PredictionLog(
            request_id=f"r{request}", model=version.model, version=version, route="production",
            caller_name="bench", created_at=now - timedelta(minutes=50, seconds=-request * 0.01),
            n_rows=per_request, row_indices=np.arange(per_request),
            inputs=[[*n.tolist(), *c.tolist()] for n, c in zip(numeric[start:stop],
                                                               cats[start:stop], strict=True)],
            outputs=outputs[start:stop], latency_ms=float(latency[request])))
        if len(batch) == 5000:
            PredictionLog.objects.bulk_create(batch)
            batch = []
    PredictionLog.objects.bulk_create(batch)
    arrays = {"numeric": numeric, "cats": cats, "outputs": outputs, "latency": latency}
    return version, arrays


def _model_bytes():
    import io

    import joblib
    from sklearn.dummy import DummyClassifier

    buffer = io.BytesIO()
    joblib.dump(DummyClassifier().fit(np.zeros((2, 1)), [0, 1]), buffer)
    buffer.seek(0)
    return buffer


def _admin():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core import roles

    roles.ensure_groups()
    admin, created = get_user_model().objects.get_or_create(username="bench-admin")
    if created:
        admin.groups.add(Group.objects.get(name=roles.ADMIN))
    return admin


def floor(profile, arrays) -> dict:
    """The same statistics with NumPy/SciPy on the arrays already in memory."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    def psi(e, a):
        e = np.clip(e / e.sum(), 1e-4, None)
        a = np.clip(a / a.sum(), 1e-4, None)
        return float(np.sum((a - e) * np.log(a / e)))

    out = {}
    for i in range(NUMERIC):
        reference = profile.features[f"x{i:02d}"]
        edges = np.asarray(reference["edges"])
        expected = np.asarray(reference["counts"], dtype=float)
        actual, _ = np.histogram(arrays["numeric"][:, i],
                                 bins=np.concatenate([[-np.inf], edges, [np.inf]]))
        ks = stats.ks_2samp(np.asarray(reference["sample"]), arrays["numeric"][:, i])
        out[f"x{i:02d}"] = (psi(expected, actual), ks.statistic,
                            jensenshannon(expected / expected.sum(), actual / actual.sum(),
                                          base=2))
    for i in range(CATEGORICAL):
        reference = profile.features[f"c{i}"]["counts"]
        labels = list(reference)
        values, counts = np.unique(arrays["cats"][:, i], return_counts=True)
        seen = dict(zip(values, counts, strict=True))
        expected = np.array([reference[k] for k in labels], dtype=float)
        actual = np.array([seen.get(k, 0) for k in labels], dtype=float)
        chi2 = stats.chi2_contingency(np.vstack([expected, actual]))
        out[f"c{i}"] = (psi(expected, actual), chi2.statistic,
                        jensenshannon(expected / expected.sum(), actual / actual.sum(), base=2))
    reference = profile.predictions["counts"]
    values, counts = np.unique(arrays["outputs"].astype(str), return_counts=True)
    seen = dict(zip(values, counts, strict=True))
    expected = np.array([reference[k] for k in reference], dtype=float)
    actual = np.array([seen.get(k, 0) for k in reference], dtype=float)
    out["predictions"] = psi(expected, actual)
    out["latency"] = np.percentile(arrays["latency"], [50, 99])
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scratch, _env = scratch_django("bench-drift")
    from django.db import connection

    from governance.models import ReferenceProfile
    from monitoring import services as monitoring_services

    results = {}
    try:
        print(f"database: {connection.vendor}; {args.rows:,} logged rows x {NUMERIC} numeric + "
              f"{CATEGORICAL} categorical features; reference sample 50,000 rows")
        for per_request in (100, 1):
            started = time.perf_counter()
            version, arrays = _setup(args.rows, per_request, seed=per_request)
            setup = time.perf_counter() - started
            profile = ReferenceProfile.objects.get(version=version)
            passes = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                (run,) = monitoring_services.monitoring_pass(model=version.model)
                passes.append(time.perf_counter() - started)
            # Memory in a pass of its own: tracing allocations slows Python down severalfold.
            tracemalloc.start()
            monitoring_services.monitoring_pass(model=version.model)
            peaks = [tracemalloc.get_traced_memory()[1] / 2**20]
            tracemalloc.stop()
            floors = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                expected = floor(profile, arrays)
                floors.append(time.perf_counter() - started)
            drift = run.figures["60"]["drift"]["features"]
            agree = max(abs(drift[name]["psi"] - expected[name][0]) for name in expected
                        if name not in ("predictions", "latency"))
            p_pass, p_floor = statistics.median(passes), statistics.median(floors)
            label = f"{args.rows // per_request:,} requests x {per_request} row(s)"
            print(f"\n{label} (loaded in {setup:.1f} s)")
            print(f"  monitoring pass (read + compute + judge + store): {p_pass * 1000:8.1f} ms "
                  f"median of {args.repeat}; peak Python memory {max(peaks):.1f} MB")
            print(f"  floor (NumPy/SciPy on arrays in memory):          {p_floor * 1000:8.1f} ms")
            print(f"  → ratio {p_pass / p_floor:.2f}x; largest PSI difference from the floor "
                  f"{agree:.2e}; window data as float64 arrays: "
                  f"{(arrays['numeric'].nbytes + arrays['cats'].size * 8) / 2**20:.1f} MB")
            print(f"  alerts: {run.status} — {run.summary}")
            results[label] = {"pass_ms": round(p_pass * 1000, 1),
                              "floor_ms": round(p_floor * 1000, 1),
                              "ratio": round(p_pass / p_floor, 2),
                              "peak_mb": round(max(peaks), 1)}
    finally:
        remove(scratch)
    save("drift", connection.vendor, results)


if __name__ == "__main__":
    main()
