"""The demo's history: each version reaches its stage the way a real one would.

Versions are validated, moved to staging, requested for production by the data scientist,
approved by the approver and deployed; the older production versions end up archived with
their retirement metadata. One promotion is left waiting in the approvals queue.
"""

from __future__ import annotations

from demo import training
from demo.people import ensure_demo_people
from governance import services
from governance.models import ValidationRun
from governance.selectors import latest_validation
from registry.models import RegisteredModel
from registry.versioning import sort_key

REASONS = {
    "overdue_prediction": "Random forest catches the seasonal late returns the baseline misses",
    "churn_prediction": "Gradient boosting beats Naive Bayes on precision",
}


def _validate(version) -> ValidationRun:
    run = ValidationRun.objects.filter(version=version, status="pending").first()
    if run is not None:
        services.validation_execute(run.pk)
    return latest_validation(version)


def _deploy(outcome):
    if outcome.deployment is not None:
        return services.deployment_execute(outcome.deployment.pk)
    return None


def _to_production(version, *, dana, april, reason, log, leave_pending=False):
    outcome = services.transition_request(version=version, to_stage="production", actor=dana,
                                          reason=reason)
    request = outcome.request
    services.validation_execute(request.validation_run_id)
    if leave_pending:
        log(f"    {version}: promotion request #{request.pk} waits for an approver")
        return
    request = services.approval_decide(request=request, actor=april, decision="approve",
                                       comment="Validation passed; metrics reviewed.")
    if hasattr(request, "deployment"):
        services.deployment_execute(request.deployment.pk)


def seed(*, log=print) -> int:
    people = ensure_demo_people(log=log)
    dana, april = people["dana"], people["april"]
    registered = 0
    for spec_model in training.catalogue():
        if RegisteredModel.objects.filter(name=spec_model.name).exists():
            log(f"  {spec_model.name}: already registered, left as it is")
            continue
        versions = training.register_versions(spec_model, actor=dana, log=log)
        registered += len(versions)
        for _spec, version in versions:
            run = _validate(version)
            log(f"    {version}: validation {run.status} ({run.summary})")
        reason = REASONS.get(spec_model.name, spec_model.description)
        for spec, version in sorted(versions, key=lambda item: sort_key(item[0].version)):
            if spec.stage == "experiment":
                continue
            _deploy(services.transition_request(version=version, to_stage="staging",
                                                actor=dana))
            if spec.stage in ("production", "archived"):
                # Archived demo versions were in production before their successor.
                _to_production(version, dana=dana, april=april, reason=reason, log=log)
            elif spec.pending_request:
                _to_production(version, dana=dana, april=april, reason=spec.description,
                               log=log, leave_pending=True)
        stages = ", ".join(f"{v.version} {v.stage}"
                           for v in RegisteredModel.objects.get(name=spec_model.name)
                           .versions.order_by("major", "minor", "patch"))
        log(f"    now: {stages}")
    return registered
