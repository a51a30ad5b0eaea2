"""Retention on PostgreSQL: dropping day partitions against deleting the same rows in chunks.

N old log rows (default 1,000,000, single-row requests of 22 features, copied in SQL from one
row the ORM wrote) are spread over the 10 whole UTC days 40 to 31 days ago. Layout "drop": those days have
their partitions, so the daily retention (30 days) drops 10 partitions. Layout "chunks": the
days have no partition, the rows are in the default partition, and the same retention deletes
them in chunks of 5,000 rows (the path every row took before partitioning, and the one SQLite
takes). The two alternate, `--rounds` times each, on the same database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mg_bench_partitions \
        .venv/bin/python bench/bench_partitions.py [--rows 1000000] [--rounds 2]

(The database is dropped and recreated: give it a scratch name.)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from bench_drift import production_version
from common import remove, save, scratch_django  # noqa: E402

DAYS, OLDEST = 10, 40


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _fill(connection, template_id: int, rows: int, now) -> float:
    """`rows` copies of the template row, spread evenly over the 10 whole UTC days that end
    when the day of the cut-off begins (so every row is in a day partition that goes)."""
    start = datetime.combine((now - timedelta(days=OLDEST)).date(), datetime.min.time(),
                             tzinfo=UTC)
    step = timedelta(days=DAYS) / rows
    columns = ("model_id, version_id, route, caller_id, caller_name, protocol, n_rows, "
               "row_indices, inputs, outputs, probabilities, latency_ms, routing_key")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO predictions_predictionlog (request_id, created_at, {columns}) "
            f"SELECT 'r' || g, %s + g * %s, {columns} FROM predictions_predictionlog t, "
            f"generate_series(0, %s - 1) g WHERE t.id = %s",
            [start, step, rows, template_id])
        cursor.execute("ANALYZE predictions_predictionlog")
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    scratch, _env = scratch_django("bench-partitions")
    from django.db import connection
    from django.utils import timezone

    from monitoring import services
    from predictions import partitions
    from predictions.models import PredictionLog

    if connection.vendor != "postgresql":
        sys.exit("PostgreSQL only: set DATABASE_URL=postgres://...")
    results = {"rows": args.rows, "runs": []}
    try:
        version = production_version("partitions", np.random.default_rng(0))
        now = timezone.now()
        template = PredictionLog.objects.create(
            request_id="template", model=version.model, version=version, route="production",
            caller_name="service", created_at=now, n_rows=1, row_indices=[0],
            inputs=[[float(i) for i in range(20)] + ["north", "b"]], outputs=[1],
            probabilities=[[0.3, 0.7]], latency_ms=2.0)
        print(f"{time.strftime('%Y-%m-%d %H:%M')}; {args.rows:,} log rows over {DAYS} days, "
              f"{OLDEST} to {OLDEST - DAYS + 1} days old; retention 30 days; load {_load()}")
        for _round in range(args.rounds):
            for layout in ("drop", "chunks") if _round % 2 == 0 else ("chunks", "drop"):
                if layout == "drop":
                    partitions.log_partitions_ensure(
                        today=(now - timedelta(days=OLDEST)).date(), days_ahead=DAYS)
                fill_s = _fill(connection, template.pk, args.rows, now)
                load = _load()
                started = time.perf_counter()
                counts = services.prediction_logs_prune(now=now)
                took = time.perf_counter() - started
                assert counts["prediction_logs"] == args.rows, counts
                run = {"layout": layout, "seconds": round(took, 3), "fill_s": round(fill_s, 1),
                       "partitions_dropped": counts["partitions_dropped"],
                       "chunks": counts["chunks"], "load": load}
                results["runs"].append(run)
                print(f"  {layout:6}: deleted {counts['prediction_logs']:,} rows in "
                      f"{took:7.2f} s ({counts['partitions_dropped']} partitions dropped, "
                      f"{counts['chunks']} chunks); filling took {fill_s:.0f} s; load {load}")
        drop = [r["seconds"] for r in results["runs"] if r["layout"] == "drop"]
        chunks = [r["seconds"] for r in results["runs"] if r["layout"] == "chunks"]
        print(f"chunked delete / partition drop: {min(chunks) / max(drop):.0f}-"
              f"{max(chunks) / min(drop):.0f}×")
    finally:
        remove(scratch)
    save("partitions", connection.vendor, results)


if __name__ == "__main__":
    main()
