"""A prediction's trace: from one request id to everything that let that answer be given.

One read, one structure (a dict that is the API's JSON as it is and the admin page's and PDF's
context): the request as logged, the version that answered with its files and their sha256,
the deployment (or the canary rollout) that made the version answer at that moment, with who
asked, who approved and who deployed, the validation run it relied on, the monitoring state
and the alerts open at that moment, and the audit events that tie them.

"At that moment" is the request's time `t`: the deployment is the latest completed one of the
version to the answering stage at or before `t`; the alerts are those first seen by `t` and
not resolved before it.

The files are not re-hashed here. A read never writes, and a mismatch must flag the version
and open an alert, which is the integrity sweep's work (every 10 minutes, core/schedules.py)
and the loader's (every served file is hashed before it is loaded). The trace shows the flag
those checks keep, and the audit events in which they set or lifted it.
"""

from __future__ import annotations

import math

from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from core import roles
from core.errors import ApplicationError
from governance.models import (
    Deployment,
    DeploymentStatus,
    Rollout,
    RunStatus,
    ValidationRun,
)
from monitoring.models import Alert, MonitoringRun
from predictions.models import Feedback, PredictionError, PredictionLog, Route
from predictions.selectors import logged_requests
from registry import access
from registry.models import FileRole, ModelVersion

MAX_REQUEST_ID = 64  # PredictionLog.request_id's length: a longer id names nothing
ANSWERING_ROLES = (FileRole.MODEL, FileRole.PREPROCESSOR)  # the files that computed the answer


def not_found(request_id: str) -> ApplicationError:
    return ApplicationError(f"no prediction with request id {request_id!r}", field="request_id",
                            status_code=404, code="not_found")


def _admin_url(obj) -> str | None:
    if obj is None:
        return None
    if getattr(obj, "block_id", None) is not None:  # a request stored in a block: its block
        return reverse("admin:predictions_predictionlogblock_change", args=[obj.block_id])
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change",
                       args=[obj.pk])
    except NoReverseMatch:  # a row the admin does not show (prediction errors)
        return None


def _person(user, frozen: str = "") -> dict | None:
    if user is None:
        return {"username": frozen, "name": ""} if frozen else None
    return {"username": user.get_username(), "name": user.get_full_name()}


def _logs(request_id: str, user) -> list[PredictionLog]:
    return logged_requests(request_id, models=access.visible_models(user))


def _finite(row: list) -> list:
    # A missing value is logged as NaN, which JSON cannot carry: it is shown as null.
    return [None if isinstance(value, float) and not math.isfinite(value) else value
            for value in row]


def _rows(log: PredictionLog) -> list[dict]:
    probabilities = log.probabilities or []
    return [{"row": index, "inputs": _finite(inputs), "output": output,
             "probabilities": probabilities[n] if n < len(probabilities) else None}
            for n, (index, inputs, output) in enumerate(zip(log.row_indices, log.inputs or [],
                                                            log.outputs, strict=False))]


def _answer(log: PredictionLog, columns: list[str]) -> dict:
    kept = len(log.row_indices)
    if log.n_rows and not kept:
        sampling = (f"sampled away: PREDICTION_LOG_SAMPLE_RATE kept none of its {log.n_rows} "
                    "row(s), so its inputs and outputs are not on record; the log row itself "
                    "(always written) names the version, and the chain follows from it")
    elif kept < log.n_rows:
        sampling = (f"sampled: {kept} of {log.n_rows} rows kept by PREDICTION_LOG_SAMPLE_RATE "
                    "(their indices in the request are given)")
    else:
        sampling = "every row kept"
    return {
        "id": log.pk, "block_id": getattr(log, "block_id", None), "admin_url": _admin_url(log),
        "time": log.created_at, "route": log.route, "protocol": log.protocol,
        "caller": _person(log.caller, log.caller_name),
        "model": log.model.name, "version": log.version.version,
        "n_rows": log.n_rows, "latency_ms": log.latency_ms, "routing_key": log.routing_key,
        "rows_logged": kept, "inputs_sampled_away": bool(log.n_rows and not kept),
        "sampling": sampling, "columns": columns, "rows": _rows(log),
    }


def _version(version: ModelVersion, at) -> dict:
    problem = version.integrity_problem or {}
    failed = version.integrity_failed_at is not None
    files = []
    for artifact in version.files.all():
        bad = failed and problem.get("file") == artifact.filename
        files.append({
            "filename": artifact.filename, "role": artifact.role, "size": artifact.size,
            "sha256": artifact.sha256, "answered": artifact.role in ANSWERING_ROLES,
            "state": "failed its sha256 check" if bad else (
                "version flagged" if failed else "intact (no check has found it changed)"),
        })
    return {
        "id": version.pk, "admin_url": _admin_url(version),
        "api_url": version.get_absolute_url(),
        "model": version.model.name, "version": version.version, "number": version.number,
        "stage_now": version.stage, "framework": version.framework,
        "algorithm": version.algorithm, "registered_by": _person(version.created_by),
        "registered_at": version.created_at, "metrics": version.metrics,
        "files": files,
        "integrity": {
            "state": "failed" if failed else "intact",
            "failed_at": version.integrity_failed_at,
            "failed_before_request": bool(failed and version.integrity_failed_at <= at),
            "problem": problem or None,
            "rehashed_now": False,
            "how": "Files are hashed against their registered sha256 before a version is "
                   "loaded to serve and by the integrity sweep every 10 minutes; a mismatch "
                   "flags the version (integrity_failed_at) and it stops serving. The trace "
                   "shows that flag; it does not re-hash.",
        },
    }


def _deployment(version: ModelVersion, at, route: str) -> Deployment | None:
    deployments = Deployment.objects.filter(
        version=version, status=DeploymentStatus.COMPLETED, completed_at__lte=at,
    ).select_related("requested_by", "deployed_by", "replaced", "request__requested_by",
                     "request__validation_run").prefetch_related("request__decisions__approver")
    if route == Route.PRODUCTION:
        deployments = deployments.filter(to_stage="production")
    # A canary, a shadow or a version called by number answered from the stage its latest
    # deployment put it in.
    return deployments.order_by("-completed_at", "-id").first()


def _rollout(version: ModelVersion, at, route: str) -> Rollout | None:
    if route not in (Route.CANARY, Route.SHADOW):
        return None
    return (Rollout.objects.filter(candidate=version, mode=route, created_at__lte=at)
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=at))
            .select_related("started_by").order_by("-created_at", "-id").first())


def _deployment_dict(deployment: Deployment | None) -> dict | None:
    if deployment is None:
        return None
    request = deployment.request
    return {
        "id": deployment.pk, "admin_url": _admin_url(deployment),
        "api_url": reverse("api:deployment-detail", args=[deployment.pk]),
        "kind": deployment.kind, "from_stage": deployment.from_stage,
        "to_stage": deployment.to_stage, "status": deployment.status,
        "requested_by": _person(deployment.requested_by), "requested_at": deployment.created_at,
        "deployed_by": _person(deployment.deployed_by), "completed_at": deployment.completed_at,
        "reason": deployment.reason,
        "replaced": deployment.replaced.version if deployment.replaced_id else None,
        "approval_request": None if request is None else {
            "id": request.pk, "admin_url": _admin_url(request),
            "api_url": reverse("api:approval-detail", args=[request.pk]),
            "from_stage": request.from_stage, "to_stage": request.to_stage,
            "requested_by": _person(request.requested_by), "requested_at": request.created_at,
            "reason": request.reason, "status": request.status,
            "approvals_required": request.approvals_required, "decided_at": request.decided_at,
        },
        "decisions": [] if request is None else [
            {"approver": _person(d.approver), "decision": d.decision, "comment": d.comment,
             "at": d.created_at} for d in request.decisions.all()],
    }


def _rollout_dict(rollout: Rollout | None) -> dict | None:
    if rollout is None:
        return None
    return {"id": rollout.pk, "admin_url": _admin_url(rollout), "mode": rollout.mode,
            "percent_now": rollout.percent, "steps": rollout.steps, "status": rollout.status,
            "started_by": _person(rollout.started_by), "started_at": rollout.created_at,
            "ended_at": rollout.ended_at, "reason": rollout.reason}


def _validation(version, deployment, rollout, at) -> tuple[ValidationRun | None, str]:
    if deployment is not None and deployment.request_id and deployment.request.validation_run_id:
        return (ValidationRun.objects.select_related("requested_by").prefetch_related("checks")
                .get(pk=deployment.request.validation_run_id),
                "the run the approval request required")
    before = (deployment.created_at if deployment is not None
              else rollout.created_at if rollout is not None else at)
    run = (ValidationRun.objects.filter(version=version, finished_at__lte=before,
                                        status__in=[RunStatus.PASSED, RunStatus.FAILED])
           .select_related("requested_by").prefetch_related("checks")
           .order_by("-finished_at", "-id").first())
    return run, "the latest run finished before the version was deployed"


def _validation_dict(run: ValidationRun | None, source: str) -> dict | None:
    if run is None:
        return None
    return {"id": run.pk, "admin_url": _admin_url(run), "relied_on_as": source,
            "trigger": run.trigger, "status": run.status, "summary": run.summary,
            "requested_by": _person(run.requested_by), "finished_at": run.finished_at,
            "checks": [{"name": c.name, "status": c.status, "detail": c.detail}
                       for c in run.checks.all()]}


def _monitoring(version: ModelVersion, at) -> dict:
    run = (MonitoringRun.objects.filter(version=version, created_at__lte=at)
           .order_by("-created_at", "-id").first())
    alerts = (Alert.objects.filter(model_id=version.model_id, first_seen__lte=at)
              .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=at))
              .order_by("first_seen", "id"))
    return {
        "last_run": None if run is None else {
            "id": run.pk, "admin_url": _admin_url(run), "at": run.created_at,
            "route": run.route, "status": run.status, "summary": run.summary,
            "requests": run.requests},
        "open_alerts": [{"id": a.pk, "admin_url": _admin_url(a), "title": a.title,
                         "severity": a.severity, "first_seen": a.first_seen,
                         "status_now": a.status, "resolved_at": a.resolved_at}
                        for a in alerts],
    }


def _events(request_id: str, subjects: list, at, user) -> tuple[list[dict], int]:
    """The events of the trace's rows up to the request's moment, and how many came later."""
    from governance.selectors import audit_events

    tie = Q(request_id=request_id)
    for subject in subjects:
        if subject is not None:
            tie |= Q(object_type=subject._meta.label_lower, object_id=str(subject.pk))
    events = audit_events(user=user).filter(tie)
    shown = [{"seq": e.seq, "admin_url": _admin_url(e), "at": e.occurred_at,
              "actor": e.actor_name, "action": e.action, "object": e.object_repr,
              "reason": e.reason}
             for e in events.filter(occurred_at__lte=at)]
    return shown, events.filter(occurred_at__gt=at).count()


def prediction_trace(*, request_id: str, user) -> dict:
    """The whole chain behind one answered request. A request the user may not see is, like
    an unknown one, a 404 naming `request_id`: those who read models may trace their
    predictions (registry.access), service accounts and outsiders may not."""
    if (not roles.has_role(user, roles.READ_ROLES) or not request_id
            or len(request_id) > MAX_REQUEST_ID):
        raise not_found(request_id)
    logs = _logs(request_id, user)
    errors = list(PredictionError.objects.filter(
        request_id=request_id, model__in=access.visible_models(user),
    ).select_related("model", "version").order_by("created_at", "id"))
    primary = next((log for log in logs if log.route != Route.SHADOW), None)
    if primary is None and not errors:  # a shadow row has its request's answer beside it
        raise not_found(request_id)

    if primary is not None:
        version_id, route, at = primary.version_id, primary.route, primary.created_at
    else:  # no answer: the version it was routed to refused or failed
        version_id, route, at = errors[0].version_id, "", errors[0].created_at
    version = (ModelVersion.objects.select_related("model", "created_by")
               .prefetch_related("files").get(pk=version_id))
    columns = [column["name"] for column in version.columns]
    deployment = _deployment(version, at, route)
    rollout = _rollout(version, at, route)
    run, source = _validation(version, deployment, rollout, at)
    events, later = _events(request_id, [version, deployment, rollout,
                                         deployment.request if deployment else None], at, user)
    return {
        "request_id": request_id,
        "answered": primary is not None,
        "at": at,
        "generated_at": timezone.now(),
        "request": None if primary is None else _answer(primary, columns),
        "shadow_answers": [_answer(log, [c["name"] for c in log.version.columns])
                           for log in logs if log.route == Route.SHADOW],
        "errors": [{"time": e.created_at, "model": e.model.name, "version": e.version.version,
                    "kind": e.kind, "status_code": e.status_code, "message": e.message,
                    "caller": e.caller_name, "protocol": e.protocol} for e in errors],
        "feedback": [{"row": f.row_index, "actual": f.actual, "at": f.created_at}
                     for f in Feedback.objects.filter(request_id=request_id)
                     .order_by("row_index")] if primary is not None else [],
        "version": _version(version, at),
        "deployment": _deployment_dict(deployment),
        "rollout": _rollout_dict(rollout),
        "validation": _validation_dict(run, source),
        "monitoring": _monitoring(version, at),
        "audit_events": events,
        "later_audit_events": later,
    }


# --- the document: the admin page's body, and the PDF -----------------------------------------

ROWS_SHOWN = 100  # logged rows shown on the page and in the PDF; the JSON has every one


def trace_context(trace: dict, *, base: str = "") -> dict:
    """What compliance/trace_body.html needs; `base` makes the links absolute (the PDF)."""
    return {"trace": trace, "base": base, "rows_shown": ROWS_SHOWN}


def trace_pdf(trace: dict, *, base: str, viewer: str):
    """The trace as a PDF download, rendered from the admin page's own body template."""
    from django.template.loader import render_to_string

    from core import pdf

    html = render_to_string("compliance/trace_document.html",
                            {**trace_context(trace, base=base), "viewer": viewer})
    return pdf.pdf_response(html, title=f"Trace of prediction {trace['request_id']}",
                            filename=f"trace-{trace['request_id']}.pdf",
                            generated_at=trace["generated_at"])
