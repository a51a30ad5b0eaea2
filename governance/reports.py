"""Audit reports for compliance: the event list as CSV, and each version's story as HTML or
PDF (the same template)."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from core import audit
from core.errors import ApplicationError
from core.filters import period
from core.models import AuditEvent
from core.spreadsheet import csv_cell
from governance.models import Deployment, ValidationRun
from registry import access
from registry.models import ModelVersion

CSV_COLUMNS = ["seq", "occurred_at", "actor", "action", "object_type", "object_id", "object",
               "model", "before", "after", "reason", "request_id", "client_ip", "prev_hash",
               "hash"]


QUARTER = re.compile(r"([0-9]{4})-?Q([1-4])", re.IGNORECASE)


def quarter_bounds(text: str) -> dict:
    """`2026Q4` as {"since": 1 October 2026, "until": 1 January 2027 (excluded)}, midnights in
    the project's time zone, like a date-only `since`/`until`."""
    match = QUARTER.fullmatch(text.strip())
    if not match:
        raise ApplicationError("a quarter such as 2026Q4 (a year, Q, then 1 to 4)",
                               field="quarter")
    year, number = int(match[1]), int(match[2])
    try:
        first = dt.date(year, 3 * number - 2, 1)
        after = dt.date(year + 1, 1, 1) if number == 4 else dt.date(year, 3 * number + 1, 1)
        return {"since": timezone.make_aware(dt.datetime.combine(first, dt.time())),
                "until": timezone.make_aware(dt.datetime.combine(after, dt.time()))}
    except (ValueError, OverflowError):  # year 0, or 9999Q4 (it ends in year 10000)
        raise ApplicationError("out of range: a quarter of years 1-9999 that ends before "
                               "year 10000", field="quarter") from None


def quarter_of(day: dt.date, *, back: int = 0) -> str:
    """The quarter holding `day` (`back=1`: the one before), as `2026Q4`."""
    index = day.year * 4 + (day.month - 1) // 3 - back
    return f"{index // 4}Q{index % 4 + 1}"


def report_period(*, since: str | None = None, until: str | None = None,
                  quarter: str | None = None) -> dict:
    """The report's range for the API, the admin and the command alike: `since`/`until`
    (core.filters.period), or a `quarter`; both at once is a 400 naming the conflict."""
    quarter = (quarter or "").strip()
    if not quarter:
        return period(since, until)
    given = [name for name, value in (("since", since), ("until", until))
             if (value or "").strip()]
    if given:
        raise ApplicationError(f"give a quarter or {' and '.join(given)}, not both",
                               field="quarter", code="conflicting_parameters")
    return {**quarter_bounds(quarter), "quarter": quarter.upper().replace("-", "")}


@dataclass
class Scope:
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Whose report: only the models they may see (None: an operator's command, everything).
    user: object = None
    quarter: str | None = None  # only to name the range; since/until bound it

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

    def range_short(self) -> str:
        if self.quarter:
            return self.quarter
        if not (self.since or self.until):
            return "all time"
        return " to ".join(f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "…"
                           for moment in (self.since, self.until))

    def range_text(self) -> str:
        """The range, as every PDF page's header and the report's first lines state it."""
        if not (self.since or self.until):
            text = "all events up to the generation time"
        else:
            text = " ".join(filter(None, [
                self.since and f"from {timezone.localtime(self.since):%Y-%m-%d %H:%M}",
                self.until and f"until {timezone.localtime(self.until):%Y-%m-%d %H:%M} "
                               "(not included)",
            ]))
        if self.quarter:
            text = f"{self.quarter}: {text}"
        return f"{text}, {timezone.get_current_timezone_name()}"


class _Echo:
    def write(self, value):
        return value


def csv_rows(scope: Scope) -> Iterator[str]:
    """The events in scope as CSV lines, streamed (the list can be long)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for e in scope.events().iterator(chunk_size=2000):
        yield writer.writerow([csv_cell(cell) for cell in [
            e.seq, e.occurred_at.isoformat(), e.actor_name, e.action, e.object_type,
            e.object_id, e.object_repr, e.model_name, e.before, e.after, e.reason,
            e.request_id, e.client_ip or "", e.prev_hash, e.hash,
        ]])


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
    versions = ModelVersion.objects.select_related("model", "created_by").prefetch_related(
        "files").order_by(
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


@dataclass
class Report:
    html: str
    title: str
    generated_at: datetime

    def pdf(self) -> bytes:
        """The same page as PDF; raises core.pdf.PdfUnavailable without Pango."""
        from core.pdf import render_pdf

        return render_pdf(self.html, title=self.title, generated_at=self.generated_at)


def report(scope: Scope) -> Report:
    """The report as HTML, with the chain's verification (a read: it records nothing) and the
    range in its header and in the title that heads every PDF page."""
    chain = audit.verify_chain()
    generated_at = timezone.now()
    verdict = (f"chain verified ({chain.checked} events)" if chain.ok
               else "chain BROKEN" + ("" if chain.first_bad_seq is None
                                      else f" at event #{chain.first_bad_seq}"))
    # The page header is cut at 120 characters: the verdict and the range come first.
    title = f"Audit report — {verdict} — {scope.range_short()} — {scope.model or 'all models'}"
    html = render_to_string("governance/audit_report.html", {
        "scope": f"model {scope.model}" if scope.model else "all models",
        "range": scope.range_text(),
        "generated_at": generated_at,
        "chain": chain,
        "stories": stories(scope),
        "events": list(scope.events()),
    })
    return Report(html=html, title=title, generated_at=generated_at)


def html(scope: Scope) -> str:
    return report(scope).html
