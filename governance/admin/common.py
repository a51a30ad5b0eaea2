"""What the governance admin pages share."""

from __future__ import annotations

from django.utils.html import format_html

from registry.admin import stage_badge


def move_badges(source: str, target: str):
    return format_html('<span style="white-space:nowrap">{} → {}</span>',
                       stage_badge(source), stage_badge(target))
