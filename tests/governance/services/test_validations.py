"""Validation: every check, run against real artifacts in the real sandbox process."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import joblib
import pytest
from django.conf import settings

from core.models import AuditEvent
from governance import services
from governance.models import ValidationRun
from tests import helpers

pytestmark = pytest.mark.django_db(transaction=True)


def _checks(run: ValidationRun) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in run.checks.all()}


def _register(data_scientist, version="1.0.0", data=None, **meta):
    return helpers.register_direct("churn_prediction", version, actor=data_scientist, data=data,
                                   meta=helpers.metadata(**meta))


def _registration_run(version) -> ValidationRun:
    """The run registration queued (these tests commit, so it ran on commit, eagerly)."""
    run = ValidationRun.objects.get(version=version, trigger="registration")
    assert run.finished
    return run


def test_registration_queues_a_validation_that_passes_for_a_good_model(
    api, data_scientist, churn_model
):
    response = helpers.register(api(data_scientist), "churn_prediction", "1.0.0")
    assert response.status_code == 201
    run = ValidationRun.objects.get(version__version="1.0.0")
    assert run.trigger == "registration"
    assert run.status == "passed", _checks(run)
    checks = _checks(run)
    assert list(checks) == ["checksum", "load", "signature", "predict", "metrics",
                            "regression", "latency", "model_card", "measured_evaluation",
                            "claimed_metrics"]
    assert checks["checksum"][0] == "passed"
    assert checks["load"][0] == "passed"
    assert checks["signature"] == ("passed", "3 columns as declared")
    assert checks["predict"][0] == "passed"
    assert "synthetic rows from the signature" in checks["predict"][1]
    assert checks["metrics"] == ("skipped", "the policy sets no metric thresholds")
    assert checks["regression"] == ("skipped", "no production version to compare with")
    assert checks["latency"][0] == "passed"
    assert checks["model_card"] == ("passed", "the policy requires no model card sections")
    assert checks["measured_evaluation"] == ("skipped",
                                             "the version has no usable reference sample")
    assert checks["claimed_metrics"][0] == "skipped"
    isolation = run.checks.get(name="load").measured["isolation"]
    layers = isolation["layers"]
    assert any(layer.startswith("rlimits") for layer in layers)
    if os.geteuid() == 0:  # CI runs as root: the whole cage, and no root inside it
        assert isolation["level"] == "full"
        assert "no network" in layers
        assert "unprivileged user (nobody)" in layers
        assert any(layer.startswith("own root file system") for layer in layers)
    assert AuditEvent.objects.filter(action="validation.passed").count() == 1


def test_a_tampered_file_fails_the_checksum_and_is_never_loaded(data_scientist, churn_model,
                                                                store_root):
    version = _register(data_scientist)
    path = Path(store_root) / "experiments/churn_prediction/v1.0.0/model.joblib"
    path.write_bytes(helpers.hostile_bytes("open('/proc/self/status')"))
    run = services.validation_request_now(version)
    checks = _checks(run)
    assert run.status == "failed"
    assert checks["checksum"][0] == "failed"
    assert checks["load"] == ("skipped",
                              "not run: the checksum check failed, so nothing was loaded")


def test_a_broken_artifact_fails_to_load_and_the_worker_carries_on(data_scientist, churn_model):
    version = _register(data_scientist, data=b"this is not a pickle at all")
    run = _registration_run(version)
    status, detail = _checks(run)["load"]
    assert status == "failed"
    assert "could not be loaded as sklearn" in detail
    assert run.status == "failed"


def test_a_hostile_pickle_cannot_write_files_reach_the_network_or_kill_the_worker(
    data_scientist, churn_model, store_root
):
    project_marker = Path(settings.BASE_DIR) / "var" / "sandbox-escape-marker"
    store_marker = Path(store_root) / "production" / "pwned"
    code = f"""
import os, socket, errno
results = []
for target in ({str(project_marker)!r}, {str(store_marker)!r}):
    try:
        with open(target, "w") as fh:
            fh.write("escaped")
        results.append("wrote " + target)
    except OSError as exc:
        results.append("write refused: " + errno.errorcode.get(exc.errno, str(exc.errno)))
try:
    socket.create_connection(("127.0.0.1", 5432), timeout=2)
    results.append("network reached")
except OSError as exc:
    results.append("network refused")
try:
    os.kill({os.getpid()}, 9)  # the worker that started the sandbox: this test process
    results.append("worker signalled")
except OSError:
    results.append("worker out of reach")
raise RuntimeError(" | ".join(results))
"""
    version = _register(data_scientist, data=helpers.hostile_bytes(code))
    run = _registration_run(version)
    status, detail = _checks(run)["load"]
    assert status == "failed"
    assert not project_marker.exists()
    assert not store_marker.exists()
    assert "wrote" not in detail
    assert "network reached" not in detail
    # Where the kernel gives us a process namespace, the worker's pid does not exist in it;
    # either way this process (the worker) is still here to record the run.
    assert run.status == "failed"


def test_an_artifact_that_never_finishes_loading_is_stopped_at_the_limit(
    data_scientist, churn_model, strict_policy
):
    strict_policy(load_timeout_seconds=2)
    version = _register(data_scientist, data=helpers.hostile_bytes("while True: pass"))
    run = _registration_run(version)
    status, detail = _checks(run)["load"]
    assert status == "failed"
    assert "did not load within 2 s" in detail


def test_an_artifact_that_ignores_the_alarm_is_killed_at_the_deadline(
    data_scientist, churn_model, strict_policy
):
    strict_policy(load_timeout_seconds=2)
    code = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True: pass"
    version = _register(data_scientist, data=helpers.hostile_bytes(code))
    started = time.monotonic()
    run = _registration_run(version)
    elapsed = time.monotonic() - started
    status, detail = _checks(run)["load"]
    assert status == "failed"
    assert "did not finish within 9 s; killed" in detail
    assert elapsed < 30


def test_an_artifact_that_eats_memory_fails_within_the_limit(data_scientist, churn_model,
                                                            strict_policy):
    strict_policy(load_memory_mb=600)
    version = _register(data_scientist, data=helpers.hostile_bytes("x = bytearray(3 * 1024 ** 3)"))
    run = _registration_run(version)
    status, detail = _checks(run)["load"]
    assert status == "failed"
    assert "MemoryError" in detail or "died" in detail


def test_an_artifact_that_exits_is_recorded_not_fatal(data_scientist, churn_model):
    version = _register(data_scientist, data=helpers.hostile_bytes("import os; os._exit(3)"))
    run = _registration_run(version)
    status, detail = _checks(run)["load"]
    assert status == "failed"
    assert "the sandbox process died (exit status 3)" in detail


def test_a_signature_that_does_not_match_the_artifact_fails(data_scientist, churn_model):
    version = _register(data_scientist, features=["a", "b", "c", "d"])
    run = _registration_run(version)
    status, detail = _checks(run)["signature"]
    assert status == "failed"
    assert "expects 3 columns, the metadata declares 4" in detail
    assert _checks(run)["predict"][0] == "failed"  # 4 synthetic columns for a 3-column model


def test_the_input_example_is_used_for_the_predict_check(data_scientist, churn_model):
    example = [[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]]
    version = _register(data_scientist, input_example=example)
    run = _registration_run(version)
    check = run.checks.get(name="predict")
    assert check.status == "passed"
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    assert check.measured["sample"] == model.predict(example).tolist()
    assert check.measured["rows_source"] == "input_example"


def test_metrics_below_the_policy_thresholds_fail(data_scientist, churn_model, strict_policy):
    strict_policy(min_metrics={"accuracy": 0.9, "recall": 0.5}, max_metrics={"rmse": 1.0})
    version = _register(data_scientist, metrics={"accuracy": 0.82})
    run = _registration_run(version)
    status, detail = _checks(run)["metrics"]
    assert status == "failed"
    assert "accuracy 0.82 is below the minimum 0.9" in detail
    assert "recall is required" in detail
    assert "rmse is required" in detail


def test_a_regression_against_production_beyond_the_tolerance_fails(
    data_scientist, churn_model, strict_policy
):
    strict_policy(regression_tolerance=0.02)
    first = _register(data_scientist, "1.0.0", metrics={"accuracy": 0.90, "rmse": 1.0})
    helpers.force_stage(first, "production")
    within = _register(data_scientist, "1.1.0", metrics={"accuracy": 0.885, "rmse": 1.01})
    worse = _register(data_scientist, "1.2.0", metrics={"accuracy": 0.80, "rmse": 1.0})
    lower_worse = _register(data_scientist, "1.3.0", metrics={"accuracy": 0.91, "rmse": 1.5})

    status, detail = _checks(_registration_run(within))["regression"]
    assert status == "passed"
    assert detail.startswith("Worse on 2 metrics, within tolerance: accuracy, rmse")
    status, detail = _checks(_registration_run(worse))["regression"]
    assert status == "failed" and "accuracy 0.9 → 0.8 (-0.1, worse beyond tolerance)" in detail
    status, detail = _checks(_registration_run(lower_worse))["regression"]
    assert status == "failed" and "rmse 1 → 1.5 (+0.5, +50.0%, worse beyond tolerance)" in detail


def test_a_precision_drop_from_0807_to_0736_fails_the_regression_check_under_the_default_policy(
    data_scientist, churn_model
):
    """The issue's case: the old default compared six metrics, precision not among them, and
    the check said "no metric worse than production beyond 2%"."""
    first = _register(data_scientist, "1.0.0", metrics={
        "accuracy": 0.836, "precision": 0.807, "recall": 0.2312, "log_loss": 0.41})
    helpers.force_stage(first, "production")
    candidate = _register(data_scientist, "1.1.0", metrics={
        "accuracy": 0.851, "precision": 0.736, "recall": 0.392, "log_loss": 0.42, "lift": 2.0})
    run = _registration_run(candidate)
    status, detail = _checks(run)["regression"]

    assert (run.status, status) == ("failed", "failed")
    assert detail == (
        "Worse than production beyond tolerance on: precision (production 1.0.0). "
        "Compared 4 metrics (production → candidate, change): accuracy 0.836 → 0.851 (+0.015); "
        "log_loss 0.41 → 0.42 (+0.01, worse within tolerance); precision 0.807 → 0.736 "
        "(-0.071, worse beyond tolerance); "
        "recall 0.2312 → 0.392 (+0.1608). "
        "Tolerance 0.02: 2 points for scores in [0, 1], 2 % of production's value otherwise. "
        "Worst drop: precision -0.071 (allowed 0.02). "
        "Not compared: lift (only the candidate declares it)")
    measured = run.checks.get(name="regression").measured
    assert (measured["baseline"], measured["tolerance"], measured["worst"]) == (
        "1.0.0", 0.02, "precision")
    assert measured["flag"]["level"] == "beyond"
    rows = {row["name"]: row for row in measured["metrics"]}
    assert list(rows) == ["accuracy", "lift", "log_loss", "precision", "recall"]
    assert {key: rows["log_loss"][key] for key in (
        "production", "candidate", "change", "direction", "outcome", "beyond_tolerance",
        "compared")} == {"production": 0.41, "candidate": 0.42, "change": 0.01,
                         "direction": "lower", "outcome": "worse", "beyond_tolerance": False,
                         "compared": True}
    assert (rows["lift"]["compared"], rows["lift"]["why_not"]) == (
        False, "only the candidate declares it")


def test_a_policy_that_names_metrics_leaves_the_others_out_of_the_check(
    data_scientist, churn_model, strict_policy
):
    strict_policy(regression_metrics=["accuracy"])
    first = _register(data_scientist, "1.0.0", metrics={"accuracy": 0.836, "precision": 0.807})
    helpers.force_stage(first, "production")
    candidate = _register(data_scientist, "1.1.0",
                          metrics={"accuracy": 0.851, "precision": 0.736})
    status, detail = _checks(_registration_run(candidate))["regression"]
    assert status == "passed"
    assert detail.startswith("No metric worse than production 1.0.0. Compared 1 metric ")
    assert "Not compared: precision (the policy names other metrics)" in detail


def test_latency_over_the_budget_fails(data_scientist, churn_model, strict_policy):
    strict_policy(latency_budget_ms=0.000001)
    version = _register(data_scientist)
    run = _registration_run(version)
    status, detail = _checks(run)["latency"]
    assert status == "failed"
    assert "over the budget" in detail
    assert run.checks.get(name="latency").measured["p50_ms"] > 0


def test_a_skipped_check_blocks_only_when_the_policy_says_so(data_scientist, churn_model,
                                                             strict_policy):
    version = _register(data_scientist)
    assert _registration_run(version).status == "passed"
    strict_policy(skipped_check_blocks=True)
    run = services.validation_request_now(version)
    assert run.status == "failed"
    assert "skipped checks block promotion" in run.summary


def test_torchscript_models_validate(data_scientist, churn_model):
    version = helpers.register_direct(
        "churn_prediction", "1.0.0", actor=data_scientist, framework="torch",
        data=helpers.torchscript_bytes(), filename="model.pt")
    run = _registration_run(version)
    checks = _checks(run)
    assert checks["load"][0] == "passed"
    assert checks["signature"][0] == "skipped"
    assert checks["predict"][0] == "passed"
    assert run.status == "passed"


def test_a_late_result_does_not_overturn_a_run_that_recovery_failed(data_scientist,
                                                                     churn_model):
    from django.utils import timezone

    from governance import validation
    from governance.models import RunStatus

    version = _register(data_scientist)
    run = ValidationRun.objects.create(version=version, trigger="manual",
                                       status=RunStatus.RUNNING, started_at=timezone.now())
    recovered = services.validation_recover(older_than_seconds=0)
    assert [(r.pk, r.status) for r in recovered] == [(run.pk, "failed")]
    verdicts = AuditEvent.objects.filter(action__in=["validation.passed", "validation.failed"])
    before = verdicts.count()
    # The worker that looked dead was only slow: its passing result arrives now.
    late = [validation.CheckResult("checksum", "passed", "ok")]
    from governance import policies
    from governance.services import validations

    validations.validation_record(run, validation.Outcome(late),
                                  policies.effective_policy(version.model))
    run.refresh_from_db()
    assert run.status == "failed"
    assert [c.name for c in run.checks.all()] == ["internal"]
    assert verdicts.count() == before


def test_the_sandbox_reads_no_secret_no_project_file_and_reaches_no_socket(
    api, data_scientist, viewer, admin_user, churn_model, tmp_path
):
    """An artifact that goes looking for secrets finds nothing, and what it raises stays in
    the admins' log: the check every role reads says only which exception it was."""
    import socket

    secret = Path(settings.VAR_DIR) / "secret_key"
    project_file = Path(settings.BASE_DIR) / "config" / "settings.py"
    planted = tmp_path / "planted-secret"
    planted.write_text("planted-secret-0123456789")
    targets = {"secret_key": secret, "shadow": Path("/etc/shadow"),
               "project": project_file, "planted": planted}
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    code = f"""
import errno, socket
found = []
for label, path in {dict((k, str(v)) for k, v in targets.items())!r}.items():
    try:
        with open(path) as fh:
            found.append(label + " READ " + fh.read(4000))
    except OSError as exc:
        found.append(label + " refused " + errno.errorcode.get(exc.errno, "?"))
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    found.append("socket CONNECTED")
except OSError as exc:
    found.append("socket refused " + errno.errorcode.get(exc.errno, "?"))
raise RuntimeError(" | ".join(found))
"""
    try:
        version = _register(data_scientist, data=helpers.hostile_bytes(code))
        run = _registration_run(version)
    finally:
        listener.close()
    status, detail = _checks(run)["load"]
    assert status == "failed"
    log = run.sandbox_log
    for label in [*targets, "socket"]:
        assert f"{label} refused" in log, log  # it tried each, and each was refused
    assert "READ" not in log and "CONNECTED" not in log
    secrets = [p.read_text()[:20] for p in (secret, planted) if p.exists()]
    body = json.dumps(api(viewer).get(
        "/api/v1/models/churn_prediction/versions/1.0.0/validations/").json())
    for text in [detail, body, *(c.detail for c in run.checks.all())]:
        assert "refused" not in text  # the artifact's own words are not shown to every role
        for value in secrets:
            assert value not in text
    assert "RuntimeError" in detail and "sandbox log" in detail
    assert "sandbox_log" not in body


def _processes_marked(marker: str) -> set[int]:
    """Processes named `marker` (this test's own, whatever else runs on the machine)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == marker:
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespaces that hold the job need root here")
def test_an_artifact_that_leaves_processes_behind_is_stopped_at_the_deadline_with_them(
    data_scientist, churn_model, strict_policy
):
    """A new session, closed pipes and forked sleepers do not outlive the job, and do not
    hold the worker past its deadline."""
    import threading
    import uuid

    strict_policy(load_timeout_seconds=2)
    marker = f"mg{uuid.uuid4().hex[:13]}"  # a process name holds 15 characters
    code = f"""
import ctypes, os, signal, time
signal.alarm(0)
os.setsid()
for fd in range(0, 20):
    try:
        os.close(fd)
    except OSError:
        pass
for _ in range(3):
    if os.fork() == 0:
        os.setsid()
        ctypes.CDLL(None).prctl(15, b"{marker}", 0, 0, 0)  # PR_SET_NAME
        time.sleep(3600)
time.sleep(3600)
"""
    seen: set[int] = set()
    done = threading.Event()

    def watch():  # the sleepers exist while the job runs: the test cannot pass vacuously
        while not done.is_set():
            seen.update(_processes_marked(marker))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    version = _register(data_scientist, data=helpers.hostile_bytes(code))
    run = _registration_run(version)
    done.set()
    watcher.join()
    status, detail = _checks(run)["load"]
    assert status == "failed"
    assert "did not finish within 9 s; killed" in detail
    assert len(seen) >= 3
    deadline = time.monotonic() + 300
    while _processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.2)  # the kernel tears the namespace down
    assert not _processes_marked(marker)


def test_an_artifact_that_floods_the_report_is_cut_off(data_scientist, churn_model):
    code = """
import os
block = b"x" * (1 << 20)
for fd in range(3, 20):
    try:
        for _ in range(80):
            os.write(fd, block)
    except OSError:
        pass
"""
    version = _register(data_scientist, data=helpers.hostile_bytes(code))
    run = _registration_run(version)
    status, detail = _checks(run)["load"]
    assert status == "failed"
    assert "the sandbox's answer passed 64 MB; killed" in detail
    assert len(run.sandbox_log) < 300_000
