"""version_register: all or nothing, under failure and under races."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, transaction

from core.errors import Conflict
from registry import services, store
from registry.models import ModelVersion, Stage
from tests import helpers
from tests.helpers import Unchanged


def _incoming(data: bytes = b"", name: str = "model.joblib"):
    return [store.ingest_stream(io.BytesIO(data or helpers.sklearn_bytes()), name=name,
                                role="model")]


def test_a_stray_folder_in_the_way_is_a_conflict_and_leaves_no_row(
    data_scientist, churn_model, store_root
):
    stray = Path(store_root) / "experiments/churn_prediction/v1.0.0"
    stray.mkdir(parents=True)
    (stray / "keep.txt").write_text("not ours")
    files = _incoming()
    with pytest.raises(Conflict, match="reconcile"):
        services.version_register(model_name="churn_prediction", version="1.0.0",
                                  framework="sklearn", metadata={}, files=files,
                                  actor=data_scientist)
    assert not ModelVersion.objects.exists()
    assert (stray / "keep.txt").read_text() == "not ours"
    assert sorted(p.name for p in stray.parent.iterdir()) == ["v1.0.0"]  # no temp folder left


def test_a_failure_after_the_folder_is_placed_removes_it(
    data_scientist, churn_model, store_root, monkeypatch
):
    def explode(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(services.audit, "record", explode)
    files = _incoming()
    with Unchanged() as unchanged:
        unchanged.files = helpers.store_snapshot() | {}
        with pytest.raises(RuntimeError):
            services.version_register(model_name="churn_prediction", version="1.0.0",
                                      framework="sklearn", metadata={}, files=files,
                                      actor=data_scientist)
        for f in files:
            f.discard()  # the caller (the view) discards what was not placed
        unchanged.files = {k: v for k, v in unchanged.files.items()
                           if not k.startswith(".incoming/")}
        # The model's (empty) folder may stay: removing it could pull it from under a
        # concurrent registration of another version that is about to rename into it.
        unchanged.files["experiments/churn_prediction"] = "dir"
    assert not (Path(store_root) / "experiments/churn_prediction/v1.0.0").exists()
    assert list((Path(store_root) / "experiments/churn_prediction").iterdir()) == []


def test_services_refuse_to_run_inside_another_transaction(
    data_scientist, churn_model, transactional_db
):
    with transaction.atomic():
        with pytest.raises(RuntimeError, match="durable"):
            services.version_register(model_name="churn_prediction", version="1.0.0",
                                      framework="sklearn", metadata={}, files=_incoming(),
                                      actor=data_scientist)


def test_the_database_allows_one_production_version_per_model(data_scientist, churn_model):
    first = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    second = helpers.register_direct("churn_prediction", "2.0.0", actor=data_scientist)
    ModelVersion.objects.filter(pk=first.pk).update(stage=Stage.PRODUCTION)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=second.pk).update(stage=Stage.PRODUCTION)


def _race(target, count):
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index):
        try:
            barrier.wait()
            results[index] = target(index)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_registrations_of_one_version_make_one_row_and_one_folder(
    transactional_db, data_scientist, churn_model, store_root
):
    incoming = [_incoming() for _ in range(4)]

    def register(index):
        return services.version_register(
            model_name="churn_prediction", version="1.0.0", framework="sklearn",
            metadata={}, files=incoming[index], actor=data_scientist,
        )

    results = _race(register, 4)
    created = [r for r in results if isinstance(r, ModelVersion)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1, results
    assert len(conflicts) == 3, results
    assert ModelVersion.objects.count() == 1
    folder = Path(store_root) / "experiments/churn_prediction"
    assert [p.name for p in folder.iterdir()] == ["v1.0.0"]
