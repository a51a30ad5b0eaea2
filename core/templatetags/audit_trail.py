"""`{{ event|changes }}`: an audit event's change as `field: old → new` lines (core.audit)."""

from django import template

from core import audit

register = template.Library()


@register.filter
def changes(event):
    return audit.changes_html(event)
