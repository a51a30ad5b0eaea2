"""Governance benchmarks.

1. Promotions end to end (request → validation → approve → folders moved) for a 1 MB and a
   500 MB artifact, each phase timed: the folder moves are renames, so the deployment phase
   should not grow with the artifact (validation does: it hashes and loads the bytes).
2. Audit events written per second by 4 concurrent writers (threads, each its own
   connection and transactions, all appending to the one hash chain).
3. `verify_audit` events per second over 1,000,000 events.

    .venv/bin/python bench/bench_governance.py                     # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_governance \\
    .venv/bin/python bench/bench_governance.py                     # PostgreSQL (recreated)

Options: --quick (fewer and smaller), --events N (default 1,000,000).
"""

from __future__ import annotations

import argparse
import io
import statistics
import threading
import time

import numpy as np
from common import MB, remove, report, save, scratch_django  # noqa: E402


def _model_bytes(size_mb: int) -> bytes:
    """A fitted logistic regression padded to about `size_mb` MB (it still loads and predicts)."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    model.padding_ = rng.integers(0, 255, size=size_mb * MB, dtype=np.uint8)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def promotions(size_mb: int, runs: int, people) -> dict:
    from django.db import connection

    from governance import services
    from registry import services as registry_services
    from registry import store

    dana, april, admin = people
    payload = _model_bytes(size_mb)
    phases = {"request": [], "validation": [], "approve": [], "deploy": [], "total": []}
    for index in range(runs):
        version = f"{size_mb}.0.{index}"
        incoming = [store.ingest_stream(io.BytesIO(payload), name="model.joblib", role="model")]
        row = registry_services.version_register(
            model_name="bench_promotions", version=version, framework="sklearn",
            metadata={"features": ["a", "b", "c"], "metrics": {"accuracy": 0.9}},
            files=incoming, actor=dana)
        services.validation_request_now(row)  # the registration's own validation
        services.version_force_stage(version=row, to_stage="staging", actor=admin,
                                     reason="bench set-up")
        started = time.perf_counter()
        outcome = services.transition_request(version=row, to_stage="production", actor=dana,
                                              reason="bench")
        t1 = time.perf_counter()
        run = services.validation_execute(outcome.request.validation_run_id)
        assert run.status == "passed", run.summary
        t2 = time.perf_counter()
        request = services.approval_decide(request=outcome.request, actor=april,
                                           decision="approve", comment="bench")
        t3 = time.perf_counter()
        deployment = services.deployment_execute(request.deployment.pk)
        t4 = time.perf_counter()
        assert deployment.status == "completed", deployment.error
        for name, value in zip(phases, (t1 - started, t2 - t1, t3 - t2, t4 - t3, t4 - started),
                               strict=True):
            phases[name].append(value)
    label = f"{size_mb} MB"
    print(f"promotion of a {label} artifact ({connection.vendor}), mean of {runs}:")
    for name, values in phases.items():
        print(f"  {name:11} {statistics.mean(values) * 1000:9.1f} ms")
    print(f"  → {1 / statistics.mean(phases['total']):.2f} promotions/s end to end; "
          f"{1 / statistics.mean(phases['deploy']):.1f} deployments/s (the folder moves)")
    return {"artifact": label, "runs": runs,
            **{f"{k}_ms": round(statistics.mean(v) * 1000, 2) for k, v in phases.items()}}


def concurrent_audit(writers: int, per_writer: int, actor) -> dict:
    from django.db import connection, transaction

    from core import audit

    barrier = threading.Barrier(writers)
    timings: list[float] = []
    lock = threading.Lock()

    def write():
        mine = []
        barrier.wait()
        for index in range(per_writer):
            started = time.perf_counter()
            with transaction.atomic():
                audit.record(action="bench.event", actor=actor, after={"n": index})
            mine.append(time.perf_counter() - started)
        connection.close()
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    result = report(f"audit write, {writers} concurrent writers", timings)
    print(f"  → {len(timings) / elapsed:,.0f} events/s in total")
    result["events_per_s_total"] = round(len(timings) / elapsed, 1)
    return result


def verify_million(count: int, actor) -> dict:
    """Append `count` chained events quickly (bulk), then time verify_chain over all of them."""
    from django.db import connection
    from django.utils import timezone

    from core import audit
    from core.models import AuditChainHead, AuditEvent

    head = AuditChainHead.objects.get(pk=1)
    seq, previous = head.seq, head.hash
    started = time.perf_counter()
    batch = []
    now = timezone.now()
    for _ in range(count):
        seq += 1
        event = AuditEvent(seq=seq, occurred_at=now, actor=actor, actor_name="bench",
                           action="bench.bulk", object_type="", object_id="", object_repr="",
                           model_name="", before="", after='{"bulk":true}', reason="",
                           request_id="", client_ip=None, prev_hash=previous)
        event.hash = audit.event_hash(event)
        previous = event.hash
        batch.append(event)
        if len(batch) == 10_000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    if batch:
        AuditEvent.objects.bulk_create(batch)
    AuditChainHead.objects.filter(pk=1).update(seq=seq, hash=previous)
    print(f"appended {count:,} events in {time.perf_counter() - started:.1f} s "
          f"({connection.vendor})")
    started = time.perf_counter()
    result = audit.verify_chain()
    elapsed = time.perf_counter() - started
    assert result.ok, result.problem
    rate = result.checked / elapsed
    print(f"verify_audit: {result.checked:,} events in {elapsed:.1f} s → {rate:,.0f} events/s")
    return {"events": result.checked, "seconds": round(elapsed, 2), "events_per_s": round(rate)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    scratch, _env = scratch_django("bench-governance")
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from core import roles
    from governance.models import Policy
    from registry import services

    roles.ensure_groups()
    User = get_user_model()
    people = []
    for name, role in (("dana", roles.DATA_SCIENTIST), ("april", roles.APPROVER),
                       ("root", roles.ADMIN)):
        user = User.objects.create_user(name)
        user.groups.add(Group.objects.get(name=role))
        people.append(user)
    services.model_create(name="bench_promotions", task_type="classification",
                          owner=people[0], actor=people[0])
    # Regression against the previous production version is not what is measured here.
    Policy.objects.filter(model__isnull=True).update(regression_metrics=["none"])
    results = {}
    try:
        results["promotion_1mb"] = promotions(1, 3 if args.quick else 10, people)
        results["promotion_500mb"] = promotions(50 if args.quick else 500,
                                                2 if args.quick else 3, people)
        results["audit_writes"] = concurrent_audit(4, 50 if args.quick else 250, people[0])
        results["verify"] = verify_million(50_000 if args.quick else args.events, people[0])
    finally:
        remove(scratch)
    save("governance", connection.vendor, results)


if __name__ == "__main__":
    main()
