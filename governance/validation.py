"""The validation checks of a version. `execute` runs them; services record the outcome.

Checks, in order: checksum (every file against its row), load (in the sandbox, within the
policy's time and memory), signature (the artifact's declared inputs against the metadata),
predict (on the version's input example or synthetic rows from its signature), metrics (the
policy's thresholds), regression (against the production version, within a tolerance),
latency (single-row median against the budget), measured_evaluation (metrics measured on the
labelled sample; required by some policies), claimed_metrics (the metrics claimed at
registration against the measured ones). A check that cannot run is `skipped` with its reason;
`warning` is a finding the policy lets through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from governance import evaluation, sandbox
from governance.models import CheckStatus
from registry import store
from registry.loaders import ArtifactError, read_verified
from registry.metadata import is_lower_better
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


def _warning(name, detail, **measured):
    return CheckResult(name, CheckStatus.WARNING, detail, measured)


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
                reference_rows=None, evaluation_rows=None) -> sandbox.Report:
    """Load and try the artifact in the sandbox (governance.sandbox)."""
    # The load has its own limit inside the sandbox; predicting and timing get as long again.
    return sandbox.run(
        framework=version.framework, payloads=payloads, rows=rows,
        reference_rows=reference_rows, evaluation_rows=evaluation_rows,
        latency_runs=LATENCY_RUNS,
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
                digest, size = store.hash_file(store.version_file(folder, artifact.filename))
                if (digest, size) != (artifact.sha256, artifact.size):
                    problems.append(f"{artifact.filename}: sha256 {digest} on disk, "
                                    f"{artifact.sha256} registered")
        except (ArtifactError, OSError, TypeError, store.UnsafeName) as exc:
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


# --- the regression check: a candidate's metrics against production's ---------------------


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _allowed_worsening(production: float, candidate: float, tolerance: float) -> tuple[float, str]:
    """How much worse the candidate may be, in the metric's units, and how that was read.

    Both values in [0, 1] (accuracy, precision, recall, F1, AUC: scores): `tolerance` points,
    absolute (0.02 = 2 points), the same bar however good production already is. Otherwise
    (an error or loss in the data's units, a count, a negative R²) a share of production's
    value (0.02 = 2 %). A share of 0 allows nothing, so a production value of 0 (which only
    gets here with the candidate outside [0, 1]) takes the tolerance as absolute.
    """
    if (0 <= production <= 1 and 0 <= candidate <= 1) or production == 0:
        return tolerance, "absolute"
    return abs(production) * tolerance, "relative"


def compare_metrics(candidate: dict, production: dict, policy) -> list[dict]:
    """One row per metric either version declares, by name: what the regression check judged.

    Compared are the metrics both declare as numbers, or of those only the ones the policy
    names (`regression_metrics`). Direction: registry.metadata.is_lower_better, and the
    policy's `lower_is_better`. A row: name, production, candidate, change (candidate minus
    production), direction ("higher"/"lower" is better), outcome ("better", "worse", "same";
    None without two numbers), worsening (how much worse, in the metric's units, else 0),
    allowed and tolerance ("absolute"/"relative"), beyond_tolerance, compared, and why_not
    (why a metric was not compared).
    """
    named = [name for name in (policy.regression_metrics or []) if isinstance(name, str)]
    extra_lower = set(policy.lower_is_better or [])
    rows = []
    for name in sorted(set(candidate) | set(production)):
        new, old = candidate.get(name), production.get(name)
        lower = is_lower_better(name) or name in extra_lower
        row = {"name": name, "production": old, "candidate": new, "change": None,
               "direction": "lower" if lower else "higher", "outcome": None, "worsening": 0,
               "allowed": None, "tolerance": None, "beyond_tolerance": False,
               "compared": False, "why_not": ""}
        rows.append(row)
        if name not in production:
            row["why_not"] = "only the candidate declares it"
            continue
        if name not in candidate:
            row["why_not"] = "only production declares it"
            continue
        if not (_is_number(new) and _is_number(old)):
            row["why_not"] = "not a number on both sides"
            continue
        # Rounded: 0.807 - 0.787 is 0.020000000000000018 in floating point, not past 0.02.
        change = round(new - old, 9)
        worsening = change if lower else -change
        allowed, kind = _allowed_worsening(old, new, policy.regression_tolerance)
        row.update(change=change, worsening=max(worsening, 0),
                   outcome="worse" if worsening > 0 else "better" if worsening < 0 else "same",
                   allowed=round(allowed, 9), tolerance=kind)
        if named and name not in named:
            row["why_not"] = "the policy names other metrics"
            continue
        row["compared"] = True
        row["beyond_tolerance"] = round(worsening - allowed, 9) > 0
    return rows


def metrics_comparison(candidate: dict, baseline: dict, policy) -> dict:
    """The rows of both-declared numeric metrics in the shape metadata.json and the approvals
    API have always had: {name: candidate, baseline, change, lower_is_better, compared,
    regressed}."""
    return {row["name"]: {"candidate": row["candidate"], "baseline": row["production"],
                          "change": round(row["change"], 6),
                          "lower_is_better": row["direction"] == "lower",
                          "compared": row["compared"], "regressed": row["beyond_tolerance"]}
            for row in compare_metrics(candidate, baseline, policy) if row["change"] is not None}


def regression_flag(rows: list[dict]) -> dict:
    """The verdict in one line, for the check's detail and the review page's flag.

    level: "beyond" (red), "worse" (amber, worse within tolerance), "none" (green), or
    "nothing" (no metric compared); names: the metrics it is about.
    """
    compared = [row for row in rows if row["compared"]]
    beyond = [row["name"] for row in compared if row["beyond_tolerance"]]
    worse = [row["name"] for row in compared if row["outcome"] == "worse"]
    if not compared:
        return {"level": "nothing", "names": [], "text": "No metric compared with production"}
    if beyond:
        return {"level": "beyond", "names": beyond,
                "text": "Worse than production beyond tolerance on: " + ", ".join(beyond)}
    if worse:
        noun = "metric" if len(worse) == 1 else "metrics"
        return {"level": "worse", "names": worse,
                "text": f"Worse on {len(worse)} {noun}, within tolerance: " + ", ".join(worse)}
    return {"level": "none", "names": [], "text": "No metric worse than production"}


def worst_drop(rows: list[dict]) -> dict | None:
    """The compared metric that used most of its tolerance (metrics differ in units), if any
    is worse at all."""
    worse = [row for row in rows if row["compared"] and row["worsening"] > 0]
    return max(worse, key=lambda row: row["worsening"] / row["allowed"] if row["allowed"]
               else float("inf"), default=None)


def tolerance_text(tolerance: float) -> str:
    points = tolerance * 100
    return (f"Tolerance {tolerance:g}: {points:g} point{'' if points == 1 else 's'} for scores "
            f"in [0, 1], {points:g} % of production's value otherwise")


def _number(value) -> str:
    return f"{value:.6g}" if _is_number(value) else repr(value)


def _change_text(row) -> str:
    text = f"{row['change']:+.6g}"
    if row["tolerance"] == "relative":
        text += f", {row['change'] / abs(row['production']):+.1%}"
    if row["outcome"] == "worse":
        text += ", worse " + ("beyond" if row["beyond_tolerance"] else "within") + " tolerance"
    return text


def _regression_detail(rows: list[dict], flag: dict, production, tolerance: float) -> str:
    compared = [row for row in rows if row["compared"]]
    parts = [f"{flag['text']} {production.version}" if flag["level"] == "none"
             else f"{flag['text']} (production {production.version})"]
    noun = "metric" if len(compared) == 1 else "metrics"
    parts.append(f"Compared {len(compared)} {noun} (production → candidate, change): " + "; ".join(
        f"{row['name']} {_number(row['production'])} → {_number(row['candidate'])} "
        f"({_change_text(row)})" for row in compared))
    parts.append(tolerance_text(tolerance))
    worst = worst_drop(rows)
    if worst is not None:
        parts.append(f"Worst drop: {worst['name']} {worst['change']:+.6g} (allowed "
                     f"{worst['allowed']:.6g})")
    skipped = [f"{row['name']} ({row['why_not']})" for row in rows if not row["compared"]]
    if skipped:
        parts.append("Not compared: " + ", ".join(skipped))
    return ". ".join(parts)


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
    rows = compare_metrics(version.metrics, production.metrics, policy)
    flag = regression_flag(rows)
    worst = worst_drop(rows)
    measured = {"baseline": production.version, "tolerance": policy.regression_tolerance,
                "flag": flag, "worst": worst["name"] if worst else None, "metrics": rows}
    if flag["level"] == "nothing":
        skipped = "; ".join(f"{row['name']}: {row['why_not']}" for row in rows)
        return _skipped("regression", f"no metric to compare with production "
                        f"{production.version}" + (f" ({skipped})" if skipped else ""),
                        **measured)
    detail = _regression_detail(rows, flag, production, policy.regression_tolerance)
    if flag["level"] == "beyond":
        return _failed("regression", detail, **measured)
    return _passed("regression", detail, **measured)


def _model_card(version, policy) -> CheckResult:
    """The model card sections the policy requires before production (registry/cards.py)."""
    from registry import cards

    required = [key for key in cards.SECTIONS if key in (policy.required_card_sections or [])]
    if not required:
        return _passed("model_card", "the policy requires no model card sections")
    missing = cards.missing_sections(version.model_card, required)
    if missing:
        return _failed("model_card", "the model card lacks sections the policy requires "
                       f"before production: {', '.join(missing)}", missing=missing,
                       required=required)
    return _passed("model_card", f"the model card has the {len(required)} section(s) the "
                   "policy requires", required=required)


@dataclass
class Outcome:
    results: list[CheckResult]
    # The parsed reference sample and the model's predictions on (some of) its rows.
    reference: object | None = None
    reference_predictions: list | None = None
    # What the sandbox said in its own words (untrusted): for admins only.
    sandbox_log: str = ""
    # Measured on the labelled sample (governance.evaluation), or why not.
    evaluation: evaluation.Evaluation | None = None
    evaluation_error: str = ""
    labelled_rows: int = 0


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
        labelled, targets = _labelled(version, outcome.reference, names)
        outcome.labelled_rows = len(labelled)
        sandboxed = run_sandbox(version, payloads, rows, policy, reference_rows,
                                labelled or None)
        report = sandboxed.data
        if labelled:
            _measure(version, outcome, report.get("evaluation"), targets, names)
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
    results.append(_model_card(version, policy))
    for check in EXTRA_CHECKS:
        results.append(check(version, policy, outcome))
    return outcome


# --- measured evaluation: the model on its labelled sample ---------------------------------


def _labelled(version: ModelVersion, reference, names) -> tuple[list, list]:
    """Rows of the reference sample that carry a label, and their labels (capped)."""
    if (reference is None or reference.target is None
            or not evaluation.measurable(version.model.task_type)):
        return [], []
    return reference.labelled_rows(names, settings.VALIDATION_EVALUATION_MAX_ROWS)


def _measure(version, outcome: Outcome, answers: dict | None, targets, names) -> None:
    """Metrics and plots from the sandbox's answers on the labelled rows (computed here, from
    the returned arrays: the labels never enter the sandbox)."""
    if not answers or not answers.get("ok"):
        outcome.evaluation_error = (failure_text(answers, "predicting on the labelled sample")
                                    if answers else "the sandbox returned no answers on the "
                                    "labelled sample")
        return
    reference = version.reference_file
    try:
        outcome.evaluation = evaluation.evaluate(
            task_type=version.model.task_type, y_true=targets,
            predictions=answers["predictions"], probabilities=answers.get("probabilities"),
            classes=answers.get("classes"), permuted=answers.get("permuted"),
            feature_names=names,
            sample={"filename": reference.filename, "sha256": reference.sha256,
                    "target": version.target, "rows": len(targets)} if reference else {})
    except ValueError as exc:
        outcome.evaluation_error = f"the answers could not be scored: {exc}"


def _metrics_text(metrics: dict) -> str:
    return ", ".join(f"{name} {_number(value)}" for name, value in metrics.items())


def check_measured_evaluation(version, policy, outcome: Outcome) -> CheckResult:
    """Metrics measured on a labelled sample; a policy may require them."""
    name, required = "measured_evaluation", policy.require_measured_evaluation
    if outcome.evaluation is not None:
        summary = outcome.evaluation.summary
        return _passed(name, f"measured on {summary['n_rows']} labelled rows: "
                       f"{_metrics_text(summary['metrics'])}", metrics=summary["metrics"],
                       n_rows=summary["n_rows"], required=required)
    loaded = any(r.name == "load" and r.status == CheckStatus.PASSED for r in outcome.results)
    if outcome.evaluation_error:
        reason = f"nothing measured: {outcome.evaluation_error}"
    elif not loaded:
        reason = "nothing measured: the artifact was not loaded"
    elif not evaluation.measurable(version.model.task_type):
        reason = f"a {version.model.task_type} model has no labels to measure against"
    elif outcome.reference is None:
        reason = "the version has no usable reference sample"
    elif outcome.reference.target is None:
        reason = (f"the reference sample has no target column ({version.target!r})"
                  if version.target else "the metadata names no target column")
    else:
        reason = "no complete labelled row in the reference sample"
    if required:
        return _failed(name, f"the policy requires a measured evaluation; {reason}",
                       required=True)
    return _skipped(name, reason, required=False)


def check_claimed_metrics(version, policy, outcome: Outcome) -> CheckResult:
    """Each metric claimed at registration against the one measured, within the policy's
    tolerance (points for scores in [0, 1], else a share): beyond it, a failure where the
    policy blocks on it, else a warning."""
    name = "claimed_metrics"
    if outcome.evaluation is None:
        return _skipped(name, "nothing measured on a labelled sample to check claims against")
    measured = outcome.evaluation.metrics
    tolerance = policy.claimed_metrics_tolerance
    rows = []
    for claimed_name, claimed in sorted(version.metrics.items()):
        key = evaluation.measured_name(claimed_name)
        value = measured.get(key)
        if not (_is_number(claimed) and _is_number(value)):
            continue
        difference = round(claimed - value, 9)
        allowed, kind = _allowed_worsening(value, claimed, tolerance)
        rows.append({"name": claimed_name, "measured_as": key, "claimed": claimed,
                     "measured": value, "difference": difference,
                     "allowed": round(allowed, 9), "tolerance": kind,
                     "beyond_tolerance": round(abs(difference) - allowed, 9) > 0})
    details = {"tolerance": tolerance, "blocks": policy.claimed_metrics_blocks,
               "metrics": rows}
    if not rows:
        return _skipped(name, "no claimed metric is among the measured ones ("
                        + ", ".join(measured) + ")", **details)
    beyond = [row for row in rows if row["beyond_tolerance"]]
    listed = "; ".join(f"{row['name']} claimed {_number(row['claimed'])}, measured "
                       f"{_number(row['measured'])} ({row['difference']:+.4g}, allowed "
                       f"±{row['allowed']:.4g})" for row in (beyond or rows))
    if not beyond:
        return _passed(name, f"{len(rows)} claimed metric(s) within tolerance of the measured "
                       f"ones: {listed}", **details)
    detail = (f"{len(beyond)} claimed metric(s) differ from the measured ones beyond "
              f"tolerance: {listed}")
    if policy.claimed_metrics_blocks:
        return _failed(name, detail, **details)
    return _warning(name, detail + " (a warning under this policy)", **details)


# Checks that read only (version, policy, outcome), run after the others, in this order.
EXTRA_CHECKS = [check_measured_evaluation, check_claimed_metrics]


def verdict(results: list[CheckResult], policy) -> tuple[bool, str]:
    failed = [r.name for r in results if r.status == CheckStatus.FAILED]
    skipped = [r.name for r in results if r.status == CheckStatus.SKIPPED]
    warned = [r.name for r in results if r.status == CheckStatus.WARNING]
    if failed:
        return False, f"failed: {', '.join(failed)}"
    if skipped and policy.skipped_check_blocks:
        return False, f"skipped checks block promotion under this policy: {', '.join(skipped)}"
    passed = len(results) - len(skipped) - len(warned)
    return True, (f"{passed} checks passed" + (f", {len(skipped)} skipped" if skipped else "")
                  + (f", warning: {', '.join(warned)}" if warned else ""))
