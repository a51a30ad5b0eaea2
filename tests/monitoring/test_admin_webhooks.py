"""Webhooks in the admin (refused addresses: test_webhook_targets.py)."""

from __future__ import annotations

from core.models import AuditEvent
from monitoring import services as monitoring_services
from monitoring.models import Webhook


def test_a_webhook_is_made_in_the_admin_and_its_secret_is_not_shown(client, admin_user, db):
    client.force_login(admin_user)
    client.post("/admin/monitoring/webhook/add/", {
        "name": "on-call", "url": "https://hooks.example/alerts", "secret": "s3cret",
        "min_severity": "warning", "enabled": "on"})
    hook = Webhook.objects.get()
    assert hook.secret == "s3cret"
    page = client.get(f"/admin/monitoring/webhook/{hook.pk}/change/").content.decode()
    assert "s3cret" not in page
    client.post(f"/admin/monitoring/webhook/{hook.pk}/change/", {
        "name": "on-call", "url": "https://hooks.example/alerts", "secret": "",
        "min_severity": "critical", "enabled": "on"})
    hook.refresh_from_db()
    assert (hook.secret, hook.min_severity) == ("s3cret", "critical")
    assert AuditEvent.objects.filter(action="webhook.changed").exists()


def test_an_approver_sees_a_webhook_but_not_its_secret(client, admin_user, approver, db):
    monitoring_services.webhook_save(actor=admin_user, name="on-call", url="https://hooks.example/a",
                          secret="s3cret")
    client.force_login(approver)
    page = client.get(f"/admin/monitoring/webhook/{Webhook.objects.get().pk}/change/")
    assert page.status_code == 200
    assert "s3cret" not in page.content.decode()
