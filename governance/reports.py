"""Audit reports for compliance: the event list as CSV, and each version's story as HTML."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from core import audit
from core.models import AuditEvent
from governance.models import Deployment, ValidationRun
from registry import access
from registry.models import ModelVersion

CSV_COLUMNS = ["seq", "occurred_at", "actor", "action", "object_type", "object_id", "object",
               "model", "before", "after", "reason", "request_id", "client_ip", "prev_hash",
               "hash"]


@dataclass
class Scope:
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Whose report: only the models they may see (None: an operator's command, everything).
    user: object = None

    def events(self):
        from governance.selectors import audit_events

        events = (AuditEvent.objects.order_by("seq") if self.user is None
                  else audit_events(user=self.user))
        if self.model:
            events = events.filter(model_name=self.model)
        if self.since:
            events = events.filter(occurred_at__gte=self.since)
        if self.until:
            events = events.filter(occurred_at__lt=self.until)
        return events

    def describe(self) -> str:
        parts = [f"model {self.model}" if self.model else "all models"]
        if self.since:
            parts.append(f"from {timezone.localtime(self.since):%Y-%m-%d %H:%M}")
        if self.until:
            parts.append(f"until {timezone.localtime(self.until):%Y-%m-%d %H:%M} (not included)")
        return ", ".join(parts) + f", times in {timezone.get_current_timezone_name()}"


class _Echo:
    def write(self, value):
        return value


def csv_rows(scope: Scope) -> Iterator[str]:
    """The events in scope as CSV lines, streamed (the list can be long)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for e in scope.events().iterator(chunk_size=2000):
        yield writer.writerow([
            e.seq, e.occurred_at.isoformat(), e.actor_name, e.action, e.object_type,
            e.object_id, e.object_repr, e.model_name, e.before, e.after, e.reason,
            e.request_id, e.client_ip or "", e.prev_hash, e.hash,
        ])


def csv_text(scope: Scope) -> str:
    return "".join(csv_rows(scope))


@dataclass
class VersionStory:
    version: ModelVersion
    validations: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    deployments: list = field(default_factory=list)
    events: list = field(default_factory=list)


def stories(scope: Scope) -> list[VersionStory]:
    versions = ModelVersion.objects.select_related("model", "created_by").order_by(
        "model__name", "major", "minor", "patch", "prerelease_key")
    if scope.model:
        versions = versions.filter(model__name=scope.model)
    if scope.user is not None:
        versions = versions.filter(model__in=access.visible_models(scope.user))
    event_list = list(scope.events())
    if scope.since or scope.until:
        touched = {(e.model_name, e.object_type, e.object_id) for e in event_list}
        names = {name for name, _, _ in touched}
        versions = versions.filter(model__name__in=names)
    by_version = {v.pk: VersionStory(v) for v in versions}
    for run in (ValidationRun.objects.filter(version_id__in=by_version)
                .prefetch_related("checks").order_by("created_at")):
        by_version[run.version_id].validations.append(run)
    from governance.models import ApprovalRequest

    for request in (ApprovalRequest.objects.filter(version_id__in=by_version)
                    .select_related("requested_by").prefetch_related("decisions__approver")
                    .order_by("created_at")):
        by_version[request.version_id].requests.append(request)
    for deployment in (Deployment.objects.filter(Q(version_id__in=by_version)
                                                 | Q(replaced_id__in=by_version))
                       .select_related("version", "replaced", "requested_by", "deployed_by",
                                       "request")
                       .prefetch_related("request__decisions__approver")
                       .order_by("created_at")):
        for pk in {deployment.version_id, deployment.replaced_id} - {None}:
            if pk in by_version:
                by_version[pk].deployments.append(deployment)
    for event in event_list:
        if event.object_type == "registry.modelversion" and event.object_id.isdigit():
            story = by_version.get(int(event.object_id))
            if story is not None:
                story.events.append(event)
    return list(by_version.values())


def html(scope: Scope) -> str:
    chain = audit.verify_chain()
    events = list(scope.events())
    return render_to_string("governance/audit_report.html", {
        "scope": scope.describe(),
        "generated_at": timezone.now(),
        "chain": chain,
        "stories": stories(scope),
        "events": events,
    })
