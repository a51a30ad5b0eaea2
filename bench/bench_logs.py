"""Prediction logs at scale: bytes per logged prediction, insert throughput, and the time of a
monitoring pass as the log grows to 100,000 and 1,000,000 logged requests (10,000,000 with
--ten-million), for each layout: one row per request (PREDICTION_LOG_BLOCKS=false) and
single-row requests in blocks (predictions.blocks), then the daily retention's delete.

Every request is a single-row request of 20 numeric and 2 categorical features with its
prediction and class probabilities (the worst case for the log: one row per prediction),
written through the log writer (`predictions.logs.flush`: encoding, one bulk insert and one
commit per --per-flush requests, as the writer thread does). Each layout logs the same
traffic (same seed) for its own version, in the same database. The monitoring window (the
last hour) always holds the same --window requests; the rest of the log is older traffic
spread over the 40 days before the last two (so no window of the default rules reaches it). A
pass that reads its window, not the table, takes the same time at every size. Passes of the
two layouts alternate; the floor is the NumPy/SciPy arithmetic on the window's arrays.

Bytes per prediction: the layout's table and its indexes (SQLite `dbstat`; PostgreSQL
`pg_total_relation_size`: heap, TOAST and indexes) / logged requests.

    .venv/bin/python bench/bench_logs.py
    .venv/bin/python bench/bench_logs.py --window 100000 --sizes 100000   # the drift bench's window
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

import numpy as np
from bench_drift import CATEGORICAL, NUMERIC, _rows, floor, production_version
from common import remove, save, scratch_django  # noqa: E402

OLDEST_DAYS, NEWEST_OLD_DAYS = 40, 2
LAYOUTS = {"rows": ("predictions_predictionlog", False),
           "blocks": ("predictions_predictionlogblock", True)}


def _version(layout: str):
    from governance.models import ReferenceProfile

    version = production_version(f"logs_{layout}", np.random.default_rng(0))
    return version, ReferenceProfile.objects.get(version=version)


def _log(version, rng, first: int, count: int, times, per_flush: int) -> tuple[float, dict]:
    """Log `count` single-row requests through the writer; returns the seconds spent in
    `flush` (encoding, insert, commit) and the requests' arrays."""
    from predictions import logs
    from predictions.blocks import new_request_id

    numeric, cats = _rows(rng, count, shift=0.5)
    matrix = np.empty((count, NUMERIC + CATEGORICAL), dtype=object)
    matrix[:, :NUMERIC] = numeric
    matrix[:, NUMERIC:] = cats
    scores = rng.random(count)
    probabilities = np.column_stack([1 - scores, scores])
    outputs = (scores > 0.5).astype(np.int64)
    latency = rng.gamma(2.0, 2.0, count)
    spent = 0.0
    for start in range(0, count, per_flush):
        for i in range(start, min(count, start + per_flush)):
            at = times(first + i)
            logs._buffer.put(logs.Answered(
                request_id=new_request_id(at), model_id=version.model_id,
                version_id=version.pk, route="production", caller_id=None,
                caller_name="service", protocol="rest", created_at=at,
                matrix=matrix[i:i + 1], predictions=outputs[i:i + 1],
                probabilities=probabilities[i:i + 1], latency_ms=float(latency[i]),
                routing_key=""))
        started = time.perf_counter()
        logs.flush()
        spent += time.perf_counter() - started
    return spent, {"numeric": numeric, "cats": cats, "outputs": outputs, "latency": latency}


def _size(connection, table: str) -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {table}")  # as autovacuum would
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            return cursor.fetchone()[0]
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = %s OR name IN "
                       "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s)",
                       [table, table])
        return cursor.fetchone()[0]


def _logged(layout: str, version) -> int:
    from django.db.models import Sum

    from predictions.models import PredictionLog, PredictionLogBlock

    if layout == "rows":
        return PredictionLog.objects.filter(version=version).count()
    return PredictionLogBlock.objects.filter(version=version).aggregate(
        n=Sum("n_requests"))["n"] or 0


def _plan(layout: str, version, now) -> list[str]:
    from predictions import blocks
    from predictions.models import PredictionLog

    since = now - timedelta(hours=1)
    found = (PredictionLog.objects.filter(version=version, created_at__gte=since,
                                          created_at__lt=now) if layout == "rows"
             else blocks.window_blocks(version, since, now))
    plan = found.order_by().values("id").explain()
    return sorted(set(re.findall(
        r"(?:USING (?:COVERING )?INDEX|Index (?:Only )?Scan using|Bitmap Index Scan on)"
        r" (\w+)", plan))) or ["none: the whole table is read"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000",
                        help="Logged requests at which to measure (comma-separated).")
    parser.add_argument("--ten-million", action="store_true", help="Also 10,000,000.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", type=int, default=10_000,
                        help="Requests in the monitoring window.")
    parser.add_argument("--per-flush", type=int, default=5_000,
                        help="Requests per flush of the log writer (5,000: its 0.5 s at "
                             "10,000 requests/s).")
    parser.add_argument("--layouts", default="rows,blocks")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")} | (
        {10_000_000} if args.ten_million else set()))
    layouts = args.layouts.split(",")
    scratch, _env = scratch_django("bench-logs")
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from monitoring import services as monitoring_services

    results = {"load_before": os.getloadavg(), "window": args.window,
               "per_flush": args.per_flush, "sizes": {}}
    try:
        print(f"{time.strftime('%Y-%m-%d %H:%M')}; database: {connection.vendor}; load average "
              f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; single-row requests of "
              f"{NUMERIC} numeric + {CATEGORICAL} categorical features; the window holds "
              f"{args.window:,} of them; {args.per_flush:,} requests per flush")
        now = timezone.now()
        state = {}
        for layout in layouts:
            version, profile = _version(layout)
            state[layout] = {"version": version, "profile": profile,
                             "empty": _size(connection, LAYOUTS[layout][0])}
        # The window's requests (the last 50 minutes) first, then older traffic in time order.
        in_window = lambda n: now - timedelta(minutes=50) + timedelta(  # noqa: E731
            seconds=n * 3000 / args.window)
        span = timedelta(days=OLDEST_DAYS - NEWEST_OLD_DAYS) / max(1, max(sizes) - args.window)
        older = lambda n: (now - timedelta(days=OLDEST_DAYS)  # noqa: E731
                           + span * (n - args.window))
        for layout in layouts:
            settings.PREDICTION_LOG_BLOCKS = LAYOUTS[layout][1]
            item = state[layout]
            item["spent"], item["arrays"] = _log(item["version"], np.random.default_rng(1), 0,
                                                 args.window, in_window, args.per_flush)
            item["rng"] = np.random.default_rng(2)
            item["logged"] = item["inserted"] = args.window
        for size in sizes:
            step = time.perf_counter()
            for layout in layouts:
                settings.PREDICTION_LOG_BLOCKS = LAYOUTS[layout][1]
                item = state[layout]
                while item["logged"] < size:
                    count = min(100_000, size - item["logged"])
                    took, _ = _log(item["version"], item["rng"], item["logged"], count, older,
                                   args.per_flush)
                    item["spent"] += took
                    item["inserted"] += count
                    item["logged"] += count
                assert _logged(layout, item["version"]) == item["logged"]
            passes = {layout: [] for layout in layouts}
            floors = {layout: [] for layout in layouts}
            windows = {}
            for _ in range(args.repeat):  # alternating: rows, blocks, rows, blocks, ...
                for layout in layouts:
                    item = state[layout]
                    started = time.perf_counter()
                    (run,) = monitoring_services.monitoring_pass(model=item["version"].model,
                                                                 now=now)
                    passes[layout].append(time.perf_counter() - started)
                    windows[layout] = run.figures[str(settings.MONITORING_WINDOW_MINUTES)][
                        "volume"]["requests"]
                    started = time.perf_counter()
                    floor(item["profile"], item["arrays"])
                    floors[layout].append(time.perf_counter() - started)
            print(f"\n{size:>12,} logged requests per layout; step took "
                  f"{time.perf_counter() - step:.0f} s; load "
                  f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
            results["sizes"][size] = {}
            for layout in layouts:
                item = state[layout]
                grown = _size(connection, LAYOUTS[layout][0]) - item["empty"]
                pass_s, floor_s = statistics.median(passes[layout]), statistics.median(
                    floors[layout])
                row = {"bytes_per_prediction": round(grown / item["logged"], 1),
                       "insert_per_s": round(item["inserted"] / item["spent"]),
                       "pass_ms": round(pass_s * 1000, 1), "floor_ms": round(floor_s * 1000, 1),
                       "ratio": round(pass_s / floor_s, 2), "window_requests": windows[layout],
                       "load": os.getloadavg(),
                       "indexes": _plan(layout, item["version"], now)}
                results["sizes"][size][layout] = row
                print(f"  {layout:>6}: {row['bytes_per_prediction']:7.1f} bytes per prediction; "
                      f"insert {row['insert_per_s']:,} requests/s; pass over "
                      f"{windows[layout]:,} requests {row['pass_ms']:.1f} ms median of "
                      f"{args.repeat}, floor {row['floor_ms']:.1f} ms: {row['ratio']:.2f}x; "
                      f"index {', '.join(row['indexes'])}")
                item["spent"], item["inserted"] = 0.0, 0
        started = time.perf_counter()
        counts = monitoring_services.prediction_logs_prune(now=now)
        took = time.perf_counter() - started
        results["prune"] = {**counts, "seconds": round(took, 2)}
        left = sum(_logged(layout, state[layout]["version"]) for layout in layouts)
        print(f"\nretention ({counts['retention_days']} days) over both layouts: deleted "
              f"{counts['prediction_logs']:,} requests' logs "
              f"({counts['prediction_log_blocks']:,} blocks) in {counts['chunks']} chunks in {took:.1f} s "
              f"({counts['prediction_logs'] / took:,.0f} requests/s); {left:,} left")
    finally:
        remove(scratch)
    save("logs", connection.vendor, results)


if __name__ == "__main__":
    main()
