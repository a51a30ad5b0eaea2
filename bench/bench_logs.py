"""Prediction logs at scale: bytes per logged prediction, insert throughput, and the time of a
monitoring pass as the table grows to 100,000 and 1,000,000 logged rows (10,000,000 with
--ten-million), then the daily retention's delete.

Every row is a single-row request of 20 numeric and 2 categorical features with its
prediction and class probabilities (the worst case for the log: one row per prediction),
written through the log writer (`predictions.logs.flush`: encoding, one bulk insert and one
commit per 5,000 requests, as the writer thread does). The monitoring window (the last hour)
always holds the same 10,000 requests; the rest of the table is older traffic spread over the
40 days before the last two (so no window of the default rules reaches it). A pass that
reads its window, not the table, takes the same time at every size.

Bytes per prediction: SQLite, the database file's growth after a WAL checkpoint / rows;
PostgreSQL, `pg_total_relation_size` of the log table (heap, TOAST and indexes) / rows.

    .venv/bin/python bench/bench_logs.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mg_bench_logs .venv/bin/python bench/bench_logs.py

(The PostgreSQL database is dropped and recreated: give it a scratch name.)
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from bench_drift import CATEGORICAL, NUMERIC, _rows, floor, production_version
from common import remove, save, scratch_django  # noqa: E402

WINDOW_REQUESTS = 10_000
BATCH = 5_000  # requests per flush: the writer thread's 0.5 s at 10,000 requests/s
OLDEST_DAYS, NEWEST_OLD_DAYS = 40, 2


def _version():
    from governance.models import ReferenceProfile

    version = production_version("logs", np.random.default_rng(0))
    return version, ReferenceProfile.objects.get(version=version)


def _log(version, rng, first: int, count: int, times) -> tuple[float, dict]:
    """Log `count` single-row requests through the writer; returns the seconds spent in
    `flush` (encoding, insert, commit) and the requests' arrays."""
    from predictions import logs

    numeric, cats = _rows(rng, count, shift=0.5)
    matrix = np.empty((count, NUMERIC + CATEGORICAL), dtype=object)
    matrix[:, :NUMERIC] = numeric
    matrix[:, NUMERIC:] = cats
    scores = rng.random(count)
    probabilities = np.column_stack([1 - scores, scores])
    outputs = (scores > 0.5).astype(np.int64)
    latency = rng.gamma(2.0, 2.0, count)
    spent = 0.0
    for start in range(0, count, BATCH):
        for i in range(start, min(count, start + BATCH)):
            logs._buffer.put(logs.Answered(
                request_id=f"r{first + i}", model_id=version.model_id, version_id=version.pk,
                route="production", caller_id=None, caller_name="service", protocol="rest",
                created_at=times(first + i), matrix=matrix[i:i + 1],
                predictions=outputs[i:i + 1], probabilities=probabilities[i:i + 1],
                latency_ms=float(latency[i]), routing_key=""))
        started = time.perf_counter()
        logs.flush()
        spent += time.perf_counter() - started
    return spent, {"numeric": numeric, "cats": cats, "outputs": outputs, "latency": latency}


def _size(connection, sqlite_path: Path | None) -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE predictions_predictionlog")  # as autovacuum would
            cursor.execute("SELECT pg_total_relation_size('predictions_predictionlog')")
            return cursor.fetchone()[0]
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sqlite_path.stat().st_size


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000",
                        help="Logged rows at which to measure (comma-separated).")
    parser.add_argument("--ten-million", action="store_true", help="Also 10,000,000 rows.")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")} | (
        {10_000_000} if args.ten_million else set()))
    scratch, _env = scratch_django("bench-logs")
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from monitoring import services as monitoring_services
    from predictions.models import PredictionLog

    sqlite_path = (Path(connection.settings_dict["NAME"]) if connection.vendor == "sqlite"
                   else None)
    results = {"load_before": os.getloadavg(), "sizes": {}}
    try:
        print(f"{time.strftime('%Y-%m-%d %H:%M')}; database: {connection.vendor}; load average "
              f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; single-row requests of "
              f"{NUMERIC} numeric + {CATEGORICAL} categorical features; the window holds "
              f"{WINDOW_REQUESTS:,} of them")
        version, profile = _version()
        now = timezone.now()
        rng = np.random.default_rng(1)
        empty = _size(connection, sqlite_path)
        # The window's requests (the last 50 minutes) first, then older traffic in time order.
        in_window = lambda n: now - timedelta(minutes=50) + timedelta(  # noqa: E731
            seconds=n * 3000 / WINDOW_REQUESTS)
        spent, window_arrays = _log(version, rng, 0, WINDOW_REQUESTS, in_window)
        span = timedelta(days=OLDEST_DAYS - NEWEST_OLD_DAYS) / (max(sizes) - WINDOW_REQUESTS)
        older = lambda n: (now - timedelta(days=OLDEST_DAYS)  # noqa: E731
                           + span * (n - WINDOW_REQUESTS))
        logged, inserted = WINDOW_REQUESTS, WINDOW_REQUESTS
        for size in sizes:
            step = time.perf_counter()
            while logged < size:
                count = min(100_000, size - logged)
                took, _ = _log(version, rng, logged, count, older)
                spent, inserted, logged = spent + took, inserted + count, logged + count
            grown = _size(connection, sqlite_path) - empty
            assert PredictionLog.objects.count() == logged
            passes = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                (run,) = monitoring_services.monitoring_pass(model=version.model, now=now)
                passes.append(time.perf_counter() - started)
            window = run.figures[str(settings.MONITORING_WINDOW_MINUTES)]["volume"]["requests"]
            plan = PredictionLog.objects.filter(
                version=version, created_at__gte=now - timedelta(hours=1),
                created_at__lt=now).order_by().values("id").explain()
            indexes = sorted(set(re.findall(
                r"(?:USING (?:COVERING )?INDEX|Index (?:Only )?Scan using|Bitmap Index Scan on)"
                r" (\w+)", plan))) or ["none: the whole table is read"]
            base = time.perf_counter()
            floor(profile, window_arrays)
            floor_s = time.perf_counter() - base
            row = {"rows": logged, "bytes_per_row": round(grown / logged, 1),
                   "insert_rows_per_s": round(inserted / spent),
                   "pass_ms": round(statistics.median(passes) * 1000, 1),
                   "floor_ms": round(floor_s * 1000, 1), "window_requests": window,
                   "load": os.getloadavg(), "step_s": round(time.perf_counter() - step, 1),
                   "plan": plan, "indexes": indexes}
            results["sizes"][logged] = row
            print(f"\n{logged:>12,} logged rows: {row['bytes_per_row']:7.1f} bytes per "
                  f"prediction; insert {row['insert_rows_per_s']:,} rows/s (encode + bulk "
                  f"insert + commit, {BATCH:,} per flush)")
            print(f"  monitoring pass over its window ({window:,} requests): "
                  f"{row['pass_ms']:8.1f} ms median of {args.repeat}; NumPy floor on the "
                  f"window's arrays {row['floor_ms']:.1f} ms; step took {row['step_s']:.0f} s; "
                  f"load {' '.join(f'{v:.2f}' for v in row['load'])}")
            print(f"  the window's rows are found through the index {', '.join(indexes)}")
            spent, inserted = 0.0, 0
        started = time.perf_counter()
        counts = monitoring_services.prediction_logs_prune(now=now)
        took = time.perf_counter() - started
        results["prune"] = {**counts, "seconds": round(took, 2)}
        print(f"\nretention ({counts['retention_days']} days) over {logged:,} rows: deleted "
              f"{counts['prediction_logs']:,} in {counts['chunks']} chunks in {took:.1f} s "
              f"({counts['prediction_logs'] / took:,.0f} rows/s); "
              f"{PredictionLog.objects.count():,} rows left")
    finally:
        remove(scratch)
    save("logs", connection.vendor, results)


if __name__ == "__main__":
    main()
