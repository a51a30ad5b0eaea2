"""What the governance admin pages share."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.html import format_html, format_html_join

from registry.admin import stage_badge


def move_badges(source: str, target: str):
    return format_html('<span style="white-space:nowrap">{} → {}</span>',
                       stage_badge(source), stage_badge(target))


def when(value) -> str:
    """A moment (a datetime, or ISO text from metadata.json) in the project's time zone."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def approvals_html(approvals):
    """"april on 2026-03-02 10:15 (“checked”), bea on ...": each approval of a deployment."""
    if not approvals:
        return "—"
    return format_html_join(", ", "{} on {}{}", (
        (a.approver.get_username(), when(a.created_at),
         format_html(" (“{}”)", a.comment) if a.comment else "")
        for a in approvals))


def people(deployment):
    """Who asked for a deployment, who approved it, who set it off: one narrow cell."""
    approvers = ", ".join(a.approver.get_username() for a in deployment.approvals()) or "—"
    return format_html(
        '<span style="white-space:nowrap">asked: {}</span><br>'
        '<span style="white-space:nowrap">approved: {}</span><br>'
        '<span style="white-space:nowrap">deployed: {}</span>',
        deployment.requested_by.get_username(), approvers,
        deployment.deployed_by.get_username())
