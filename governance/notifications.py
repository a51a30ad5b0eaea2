"""E-mail and webhooks to the people (and systems) who must act."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db.models import Q

from core import roles
from governance import rules
from governance.models import ApprovalRequest, Decision, RequestStatus


def approvers_notify(request_id: int) -> int:
    """Tell every approver who may still decide (governance.rules: of the model's team, neither
    the requester nor the author, not decided yet). Returns how many were told.

    The message is composed when the task runs, from the state then: a request decided
    meanwhile (a worker that was down while the approvers acted in the admin) sends nothing,
    and the count of approvals is the current one."""
    request = ApprovalRequest.objects.select_related(
        "version__model__team", "version__created_by", "requested_by").get(pk=request_id)
    if request.status != RequestStatus.PENDING:
        return 0
    User = get_user_model()
    people = (User.objects.filter(is_active=True)
              .filter(Q(groups__name__in=sorted(roles.APPROVE_ROLES)) | Q(is_superuser=True))
              .exclude(email="").distinct())
    people = [person for person in people if rules.decision_refusal(person, request) is None
              and not rules.already_decided(person, request)]
    if not people:
        return 0
    given = request.decisions.filter(decision=Decision.APPROVE).count()
    version = request.version
    subject = (f"[model governance] approval needed: {version.model.name} {version.version} "
               f"→ {request.to_stage}")
    link = f"{settings.APP_BASE_URL}/admin/governance/approvalrequest/{request.pk}/change/"
    body = (
        f"{request.requested_by.get_username()} asks to move {version.model.name} "
        f"{version.version} from {request.from_stage} to {request.to_stage}.\n\n"
        f"Reason: {request.reason or '(none given)'}\n"
        f"Approvals: {given} of {request.approvals_required} needed\n\n"
        f"Review the validation results and metrics, then approve or reject:\n{link}\n"
    )
    messages = [(subject, body, settings.DEFAULT_FROM_EMAIL, [person.email]) for person in people]
    return send_mass_mail(messages, fail_silently=False) if messages else 0
