"""An audit event's change as `field: old → new` lines, the same on every page that shows one:
the event's admin page, a version's audit history and the compliance report."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template

from core import audit
from core.audit import Change
from core.models import AuditEvent
from registry import services
from tests import helpers

pytestmark = pytest.mark.django_db


def test_an_update_is_a_line_per_changed_field():
    assert audit.change_lines('{"stage":"staging","percent":10}',
                              '{"stage":"production","percent":50}') == [
        Change("stage", "staging", "production"), Change("percent", "10", "50")]


def test_a_creation_has_no_old_values_and_a_removal_no_new_one():
    assert audit.change_lines("", '{"name":"churn","tags":["a","b"]}') == [
        Change("name", None, "churn"), Change("tags", None, '["a", "b"]')]
    assert audit.change_lines('{"limit":5,"user":"svc"}', '{"user":"svc2"}') == [
        Change("user", "svc", "svc2"), Change("limit", "5", audit.MISSING)]
    assert audit.change_lines('{"limit":5}', "") == [Change("limit", "5", audit.MISSING)]
    assert audit.change_lines("", "") == []


def test_a_value_that_is_not_an_object_is_one_line_and_long_values_are_cut():
    assert audit.change_lines("", "[1,2]") == [Change("value", None, "[1, 2]")]
    long = audit.change_lines("", '{"notes":"' + "x" * 1000 + '"}')[0].new
    assert len(long) == audit.VALUE_CHARS and long.endswith("…")


def _rendered(event) -> list[str]:
    html = Template("{% load audit_trail %}{{ event|changes }}").render(
        Context({"event": event}))
    return [re.sub(r"<[^>]+>", "", line) for line in re.findall(r"<li>(.*?)</li>", html)]


def test_the_filter_renders_lines_and_escapes_what_it_shows():
    event = AuditEvent(before='{"description":"old <b>"}',
                       after='{"description":"new <script>"}')
    assert _rendered(event) == ["description: old &lt;b&gt; → new &lt;script&gt;"]


@pytest.fixture
def edited(data_scientist, churn_model):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    services.version_update(version=version, actor=data_scientist, description="Retrained",
                            tags=["q4"])
    return version


def test_the_event_page_version_history_and_report_show_the_same_lines(client, admin_user,
                                                                      edited):
    event = AuditEvent.objects.get(action="version.updated")
    lines = _rendered(event)
    assert lines[0].startswith("description: ") and lines[0].endswith(" → Retrained")
    client.force_login(admin_user)
    pages = {
        "event": client.get(f"/admin/core/auditevent/{event.pk}/change/"),
        "version": client.get(f"/admin/registry/modelversion/{edited.pk}/change/"),
        "report": client.get("/admin/core/auditevent/report/?download=1"
                             "&model=churn_prediction"),
    }
    for name, page in pages.items():
        assert page.status_code == 200, name
        text = page.content.decode()
        shown = [re.sub(r"<[^>]+>", "", line) for line in re.findall(
            r'<ul class="audit-changes">(.*?)</ul>', text, re.S)]
        assert "".join(lines) in shown, name
        # The raw JSON is never the change column (the event page folds it away).
        assert f"<code>{event.before}" not in text, name
