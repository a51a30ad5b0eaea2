"""The validation checks of a version. `execute` runs them; services record the outcome.

Checks, in order: checksum (every file against its row), load (in the sandbox, within the
policy's time and memory), signature (the artifact's declared inputs against the metadata),
predict (on the version's input example or synthetic rows from its signature), metrics (the
policy's thresholds), regression (against the production version, within a tolerance),
latency (single-row median against the budget). A check that cannot run is `skipped` with
its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from governance import sandbox
from governance.models import CheckStatus
from registry import store
from registry.loaders import ArtifactError, read_verified
from registry.models import FileRole, ModelVersion, Stage

logger = logging.getLogger(__name__)
SYNTHETIC_ROWS = 5
# Reference rows the sandbox predicts on: the prediction distribution monitoring compares with.
REFERENCE_PREDICT_ROWS = 2000
LATENCY_RUNS = 30


@dataclass
class CheckResult:
    name: str
    status: str
    detail: str = ""
    measured: dict = field(default_factory=dict)


def _passed(name, detail="", **measured):
    return CheckResult(name, CheckStatus.PASSED, detail, measured)


def _failed(name, detail, **measured):
    return CheckResult(name, CheckStatus.FAILED, detail, measured)


def _skipped(name, reason, **measured):
    return CheckResult(name, CheckStatus.SKIPPED, reason, measured)


# --- sample input -----------------------------------------------------------------------------


def sample_rows(version: ModelVersion, reference_data=None) -> tuple[list | None, str]:
    """Rows to predict on, and where they came from."""
    names = [column["name"] for column in version.signature] or list(version.features)
    example = version.input_example
    if example:
        if all(isinstance(row, dict) for row in example):
            return [[row.get(name) for name in names] for row in example], "input_example"
        return [list(row) for row in example], "input_example"
    if reference_data is not None:
        return reference_data.rows(names, SYNTHETIC_ROWS), "rows of the reference sample"
    if version.signature:
        rng = np.random.default_rng(0)
        rows = []
        for _ in range(SYNTHETIC_ROWS):
            row = []
            for column in version.signature:
                dtype = column["dtype"]
                if dtype.startswith("float"):
                    row.append(float(rng.normal()))
                elif dtype.startswith("int"):
                    row.append(int(rng.integers(0, 10)))
                elif dtype == "bool":
                    row.append(int(rng.integers(0, 2)))
                else:
                    return None, "synthetic rows cannot be made for text columns"
            rows.append(row)
        return rows, "synthetic rows from the signature"
    return None, "no input_example, reference sample or signature to build rows from"


# --- the sandbox ------------------------------------------------------------------------------


def run_sandbox(version: ModelVersion, payloads: list[tuple[str, str, bytes]], rows, policy,
                reference_rows=None) -> sandbox.Report:
    """Load and try the artifact in the sandbox (governance.sandbox)."""
    # The load has its own limit inside the sandbox; predicting and timing get as long again.
    return sandbox.run(
        framework=version.framework, payloads=payloads, rows=rows,
        reference_rows=reference_rows, latency_runs=LATENCY_RUNS,
        limits={"load_seconds": policy.load_timeout_seconds,
                "memory_mb": policy.load_memory_mb},
        timeout=2 * policy.load_timeout_seconds + 5,
    )


def failure_text(section: dict, what: str) -> str:
    """A sandbox failure in our words: the artifact's own message stays in the admins' log."""
    if section.get("type", "").startswith(("a ", "an ", "predictions", "probabilities")):
        return f"{what} failed: {section['type']}"
    name = section.get("cause") if section.get("type") == "ArtifactError" else None
    raised = name or section.get("type", "an exception")
    return (f"{what} raised {raised}; the artifact's own message is in the sandbox log "
            "(admins)")


def _load_failure(load: dict, version: ModelVersion, policy) -> str:
    if load.get("died"):
        return load["died"]
    if load.get("refused"):
        return f"not loaded: {load['refused']}"
    if load.get("timed_out"):
        return f"did not load within {policy.load_timeout_seconds} s"
    model_file = version.model_file
    if load.get("type") == "ArtifactError" and load.get("cause"):
        return (f"{model_file.filename if model_file else 'the model file'} could not be "
                f"loaded as {version.framework} ({load['cause']}); the artifact's own message "
                "is in the sandbox log (admins)")
    return failure_text(load, "loading the artifact")


# --- the checks -------------------------------------------------------------------------------


def _checksum(version: ModelVersion):
    """Verify every file; keep the bytes of those the sandbox loads, and of the reference."""
    payloads, problems, reference_bytes = [], [], None
    for artifact in sorted(version.files.all(), key=lambda f: f.position):
        try:
            if artifact.role in (FileRole.MODEL, FileRole.PREPROCESSOR):
                payloads.append((artifact.role, artifact.filename,
                                 read_verified(version, artifact)))
            elif artifact.role == FileRole.REFERENCE:
                reference_bytes = read_verified(version, artifact)
            else:
                folder = store.locate_version_dir(version.model.name, version.version,
                                                  version.stage)
                digest, size = store.hash_file(folder / artifact.filename)
                if (digest, size) != (artifact.sha256, artifact.size):
                    problems.append(f"{artifact.filename}: sha256 {digest} on disk, "
                                    f"{artifact.sha256} registered")
        except (ArtifactError, OSError, TypeError) as exc:
            problems.append(str(exc) if isinstance(exc, ArtifactError)
                            else f"{artifact.filename} cannot be read")
    files = len(version.files.all())
    if problems:
        return _failed("checksum", "; ".join(problems), files=files), None, None
    return (_passed("checksum", f"{files} file(s) match their registered sha256", files=files),
            payloads, reference_bytes)


def _signature(version, report) -> CheckResult:
    if not version.signature:
        return _skipped("signature", "the metadata declares no signature")
    declared = report.get("inputs") or {}
    expected = [column["name"] for column in version.signature]
    n_features, names = declared.get("n_features"), declared.get("names")
    if n_features is None and names is None:
        return _skipped("signature", f"a {version.framework} artifact does not declare its "
                        "inputs; the predict check exercises them")
    if names is not None and names != expected:
        return _failed("signature", f"the artifact expects columns {names}, the metadata "
                       f"declares {expected}")
    if n_features is not None and n_features != len(expected):
        return _failed("signature", f"the artifact expects {n_features} columns, the "
                       f"metadata declares {len(expected)}", n_features=n_features)
    return _passed("signature", f"{len(expected)} columns as declared", n_features=n_features)


def _predict(report, rows, source) -> CheckResult:
    if rows is None:
        return _skipped("predict", source)
    outcome = report.get("predict") or {}
    if not outcome.get("ok"):
        return _failed("predict", failure_text(outcome, "predicting") if outcome
                       else "no prediction", rows_source=source)
    if outcome["outputs"] != outcome["rows"]:
        return _failed("predict", f"{outcome['outputs']} outputs for {outcome['rows']} rows")
    if not outcome["finite"]:
        return _failed("predict", "predictions contain NaN or infinity")
    return _passed("predict", f"{outcome['rows']} rows ({source})", rows=outcome["rows"],
                   sample=outcome.get("sample"), rows_source=source)


def _latency(report, policy) -> CheckResult:
    latency = report.get("latency")
    if not latency:
        return _skipped("latency", "nothing to time: the predict check did not pass")
    budget = policy.latency_budget_ms
    if latency["p50_ms"] > budget:
        return _failed("latency", f"single-row median {latency['p50_ms']:.2f} ms is over the "
                       f"budget of {budget:g} ms", **latency, budget_ms=budget)
    return _passed("latency", f"single-row median {latency['p50_ms']:.2f} ms (budget "
                   f"{budget:g} ms)", **latency, budget_ms=budget)


def _metrics(version, policy) -> CheckResult:
    if not policy.min_metrics and not policy.max_metrics:
        return _skipped("metrics", "the policy sets no metric thresholds")
    problems = []
    for name, bound in policy.min_metrics.items():
        value = version.metrics.get(name)
        if value is None:
            problems.append(f"{name} is required (at least {bound}) but not declared")
        elif value < bound:
            problems.append(f"{name} {value} is below the minimum {bound}")
    for name, bound in policy.max_metrics.items():
        value = version.metrics.get(name)
        if value is None:
            problems.append(f"{name} is required (at most {bound}) but not declared")
        elif value > bound:
            problems.append(f"{name} {value} is above the maximum {bound}")
    thresholds = {"min": policy.min_metrics, "max": policy.max_metrics}
    if problems:
        return _failed("metrics", "; ".join(problems), thresholds=thresholds)
    return _passed("metrics", "declared metrics meet the policy", thresholds=thresholds)


def metrics_comparison(candidate: dict, baseline: dict, policy) -> dict:
    """Per shared metric: both values, the change, and whether it is worse beyond tolerance."""
    rows = {}
    for name in sorted(set(candidate) & set(baseline)):
        new, old = candidate[name], baseline[name]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (new, old)):
            continue
        lower_better = name in policy.lower_is_better
        allowed = abs(old) * policy.regression_tolerance
        compared = not policy.regression_metrics or name in policy.regression_metrics
        worse = compared and ((new > old + allowed) if lower_better else (new < old - allowed))
        rows[name] = {"candidate": new, "baseline": old, "change": round(new - old, 6),
                      "lower_is_better": lower_better, "compared": compared, "regressed": worse}
    return rows


def _regression(version, policy, trigger: str) -> CheckResult:
    if trigger == "rollback":
        return _skipped("regression", "a rollback returns to a version that was in production; "
                        "being worse than the current one is expected")
    production = (ModelVersion.objects.filter(model_id=version.model_id, stage=Stage.PRODUCTION)
                  .exclude(pk=version.pk).first())
    if production is None:
        if version.stage == Stage.PRODUCTION:
            return _skipped("regression", "this version is the production version")
        return _skipped("regression", "no production version to compare with")
    comparison = metrics_comparison(version.metrics, production.metrics, policy)
    if not any(row["compared"] for row in comparison.values()):
        return _skipped("regression", f"no metric in common with production "
                        f"{production.version}")
    worse = [f"{name} {row['candidate']} vs {row['baseline']}"
             for name, row in comparison.items() if row["regressed"]]
    tolerance = f"{policy.regression_tolerance:.0%}"
    if worse:
        return _failed("regression", f"worse than production {production.version} beyond "
                       f"{tolerance}: " + "; ".join(worse), baseline=production.version,
                       comparison=comparison)
    return _passed("regression", f"no metric worse than production {production.version} "
                   f"beyond {tolerance}", baseline=production.version, comparison=comparison)


@dataclass
class Outcome:
    results: list[CheckResult]
    # The parsed reference sample and the model's predictions on (some of) its rows.
    reference: object | None = None
    reference_predictions: list | None = None
    # What the sandbox said in its own words (untrusted): for admins only.
    sandbox_log: str = ""


def _reference(version: ModelVersion, data: bytes | None):
    if data is None:
        return None
    from core.errors import ApplicationError
    from registry import reference

    try:
        return reference.read(data, version.columns, version.target)
    except ApplicationError as exc:  # it was checked at registration: only if the rules moved
        logger.warning("reference sample of %s not usable: %s", version, exc.message)
        return None


def execute(version: ModelVersion, policy, trigger: str = "manual") -> Outcome:
    checksum, payloads, reference_bytes = _checksum(version)
    results = [checksum]
    outcome = Outcome(results)
    if payloads is None:
        reason = "not run: the checksum check failed, so nothing was loaded"
        results += [_skipped(name, reason) for name in ("load", "signature", "predict")]
        latency = _skipped("latency", reason)
    else:
        outcome.reference = _reference(version, reference_bytes)
        rows, source = sample_rows(version, outcome.reference)
        names = [column["name"] for column in version.columns]
        reference_rows = (outcome.reference.rows(names, REFERENCE_PREDICT_ROWS)
                          if outcome.reference is not None else None)
        sandboxed = run_sandbox(version, payloads, rows, policy, reference_rows)
        report = sandboxed.data
        outcome.sandbox_log = sandboxed.log
        outcome.reference_predictions = report.get("reference_predictions")
        if report.get("reference_predictions_error"):
            # The profile is kept without a prediction distribution; say why in the log.
            logger.warning("%s: no predictions on its reference rows (%s)", version,
                           report["reference_predictions_error"])
        load = report["load"]
        isolation = sandboxed.isolation
        if load.get("ok"):
            results.append(_passed(
                "load", f"loaded in {load['seconds']:.2f} s, peak memory "
                f"{report.get('peak_rss_mb', 0):.0f} MB ({isolation['level']} isolation)",
                seconds=load["seconds"], peak_rss_mb=report.get("peak_rss_mb"),
                isolation=isolation,
                limits={"seconds": policy.load_timeout_seconds, "memory_mb": policy.load_memory_mb},
            ))
            results.append(_signature(version, report))
            results.append(_predict(report, rows, source))
            latency = _latency(report, policy)
        else:
            results.append(_failed("load", _load_failure(load, version, policy),
                                   isolation=isolation))
            reason = "not run: the artifact did not load"
            results += [_skipped("signature", reason), _skipped("predict", reason)]
            latency = _skipped("latency", reason)
    results += [_metrics(version, policy), _regression(version, policy, trigger), latency]
    return outcome


def verdict(results: list[CheckResult], policy) -> tuple[bool, str]:
    failed = [r.name for r in results if r.status == CheckStatus.FAILED]
    skipped = [r.name for r in results if r.status == CheckStatus.SKIPPED]
    if failed:
        return False, f"failed: {', '.join(failed)}"
    if skipped and policy.skipped_check_blocks:
        return False, f"skipped checks block promotion under this policy: {', '.join(skipped)}"
    passed = len(results) - len(skipped)
    return True, f"{passed} checks passed" + (f", {len(skipped)} skipped" if skipped else "")
