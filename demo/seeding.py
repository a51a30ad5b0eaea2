"""The demo's history: each version reaches its stage the way a real one would.

Versions are validated, moved to staging, requested for production by the data scientist,
approved by the approver and deployed; the older production versions end up archived with
their retirement metadata. One promotion is left waiting in the approvals queue.

Every step looks at where things are before it acts, so a seeding that was interrupted (Ctrl-C,
a killed process, a full disk) is finished by the next run rather than skipped or repeated:
half-done deployments are recovered first, missing versions registered, interrupted validations
run again, and each version taken on from the stage it reached.
"""

from __future__ import annotations

from demo import training
from demo.compliance import CARDS
from demo.people import ensure_demo_people
from governance import services
from governance.models import ApprovalRequest, RequestStatus, RunStatus, ValidationRun
from governance.selectors import latest_validation
from registry import services as registry_services
from registry.models import ModelVersion, RegisteredModel
from registry.versioning import sort_key

REASONS = {
    "overdue_prediction": "Random forest catches the seasonal late returns the baseline misses",
    "churn_prediction": "Gradient boosting beats Naive Bayes on precision",
}
INTERRUPTED = "the worker stopped before the run finished"


def _validate(version) -> ValidationRun:
    """The version's validation, run now unless it has one that finished on its own."""
    run = latest_validation(version)
    if run is not None and run.status == RunStatus.PENDING:
        services.validation_execute(run.pk)
    elif run is None or (run.status == RunStatus.FAILED and run.checks.filter(
            name="internal", detail__contains=INTERRUPTED).exists()):
        services.validation_request_now(version, trigger="registration")
    return latest_validation(version)


def _pending_request(version) -> ApprovalRequest | None:
    return ApprovalRequest.objects.filter(version=version, to_stage="production",
                                          status=RequestStatus.PENDING).first()


def _to_production(version, *, dana, april, reason, log, leave_pending=False):
    request = _pending_request(version)
    if request is None:
        request = services.transition_request(version=version, to_stage="production",
                                              actor=dana, reason=reason).request
    if request.validation_run_id:
        services.validation_execute(request.validation_run_id)  # skipped once it ran
    request.refresh_from_db()
    if request.status != RequestStatus.PENDING:  # its validation failed: the demo cannot go on
        log(f"    {version}: promotion request #{request.pk} is {request.status}: "
            f"{request.status_reason}")
        return
    if leave_pending:
        log(f"    {version}: promotion request #{request.pk} waits for an approver")
        return
    request = services.approval_decide(request=request, actor=april, decision="approve",
                                       comment="Validation passed; metrics reviewed.")
    if hasattr(request, "deployment"):
        services.deployment_execute(request.deployment.pk)


def _to_stage(spec, version, *, dana, april, reason, log):
    version.refresh_from_db()
    if spec.stage == "experiment":
        return
    if version.stage == "experiment":
        outcome = services.transition_request(version=version, to_stage="staging", actor=dana)
        if outcome.deployment is not None:
            services.deployment_execute(outcome.deployment.pk)
        version.refresh_from_db()
    if version.stage != "staging":
        return  # already where the demo wants it (or further: archived after production)
    if spec.stage in ("production", "archived"):
        # Archived demo versions were in production before their successor.
        _to_production(version, dana=dana, april=april, reason=reason, log=log)
    elif spec.pending_request:
        _to_production(version, dana=dana, april=april, reason=spec.description, log=log,
                       leave_pending=True)


def _is_complete(spec_model) -> bool:
    stages = dict(ModelVersion.objects.filter(model__name=spec_model.name)
                  .values_list("version", "stage"))
    if set(stages) != {spec.version for spec in spec_model.versions}:
        return False
    for spec in spec_model.versions:
        if stages[spec.version] != spec.stage:
            return False
        if spec.pending_request and not ApprovalRequest.objects.filter(
                version__model__name=spec_model.name, version__version=spec.version,
                status=RequestStatus.PENDING).exists():
            return False
    return True


def seed(*, log=print) -> int:
    """Bring the demo to its full history; returns how many versions were registered now."""
    people = ensure_demo_people(log=log)
    dana, april = people["dana"], people["april"]
    # What an interrupted run left half-done: folder moves first, then validations.
    for deployment in services.deployment_recover():
        log(f"  finished interrupted deployment #{deployment.pk} ({deployment.status})")
    services.validation_recover(older_than_seconds=0)
    registered = 0
    for spec_model in training.catalogue():
        if _is_complete(spec_model):
            log(f"  {spec_model.name}: already seeded, left as it is")
            continue
        if RegisteredModel.objects.filter(name=spec_model.name).exists():
            log(f"  {spec_model.name}: finishing what an interrupted run began")
        registered += len(training.register_versions(spec_model, actor=dana, log=log))
        versions = {v.version: v for v in ModelVersion.objects.filter(
            model__name=spec_model.name)}
        pairs = [(spec, versions[spec.version]) for spec in spec_model.versions]
        for _spec, version in pairs:
            run = _validate(version)
            log(f"    {version}: validation {run.status} ({run.summary})")
        reason = REASONS.get(spec_model.name, spec_model.description)
        for spec, version in sorted(pairs, key=lambda item: sort_key(item[0].version)):
            _to_stage(spec, version, dana=dana, april=april, reason=reason, log=log)
        stages = ", ".join(f"{v.version} {v.stage}"
                           for v in RegisteredModel.objects.get(name=spec_model.name)
                           .versions.order_by("major", "minor", "patch"))
        log(f"    now: {stages}")
    _apply_cards(dana, log)
    apply_inventory(april=april, log=log)
    return registered


def _apply_cards(dana, log) -> None:
    """The demo models' model cards (demo/compliance.py) on each of their versions, written
    by their data scientist through the card service; a card already there is left alone."""
    for version in ModelVersion.objects.filter(model__name__in=CARDS).select_related("model"):
        card = CARDS[version.model.name]
        if version.model_card != card:
            registry_services.version_card_update(version=version, actor=dana, sections=card)
            # As the seeder runs validations itself, it writes the file itself too, not only
            # on commit (a test's transaction never commits; a second write is the same).
            registry_services.write_version_card(version.pk)
            log(f"    {version}: model card written")


OVERDUE_DAYS = 12  # how long overdue_prediction's production review is, on a fresh demo


def apply_inventory(*, april, log=print) -> None:
    """Each demo model's risk tier, why and business use (demo/compliance.py), set by april
    as an approver would; then overdue_prediction's production version is made due for review
    OVERDUE_DAYS ago (as if deployed over a year ago) and the sweep opens its review-overdue
    alert. A second run changes nothing: the tiers are set, the date is already past (or a
    review recorded since moved it), and the sweep keeps its one alert."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from core import audit
    from core.accounts import system_user
    from demo.compliance import INVENTORY
    from governance.models import Review
    from monitoring.services import review_overdue_sweep
    from registry import services as registry_services

    for name, (tier, reason, use) in INVENTORY.items():
        model = RegisteredModel.objects.filter(name=name).first()
        if model is None:
            continue
        if (model.risk_tier, model.risk_reason, model.business_use) != (tier, reason, use):
            registry_services.model_risk_set(model=model, actor=april, risk_tier=tier,
                                             risk_reason=reason, business_use=use)
            log(f"  {name}: risk tier {tier}")
    version = ModelVersion.objects.filter(model__name="overdue_prediction",
                                          stage="production").first()
    if (version is not None and version.review_due_at is not None
            and version.review_due_at > timezone.now()
            and not Review.objects.filter(version=version).exists()):
        due = timezone.now() - timedelta(days=OVERDUE_DAYS)
        with transaction.atomic():
            before = version.review_due_at
            registry_services.version_review_due_set(version=version, review_due_at=due)
            audit.record(action="version.review_due_set", actor=system_user(), subject=version,
                         reason=f"demo: a production version whose review is {OVERDUE_DAYS} "
                         "days overdue", before={"review_due_at": before.isoformat()},
                         after={"review_due_at": due.isoformat()})
        log(f"  {version}: review due {OVERDUE_DAYS} days ago (demo)")
    for outcome in review_overdue_sweep():
        log(f"  {outcome}")


def is_seeded() -> bool:
    return all(_is_complete(spec_model) for spec_model in training.catalogue())

