"""Monitoring's one receiver: when the registry flags a version's files (or lifts the flag),
the model's integrity alert is brought in line once the change commits."""

from django.dispatch import receiver

from core.queue import enqueue_on_commit
from registry.signals import integrity_changed


@receiver(integrity_changed, dispatch_uid="monitoring.integrity_changed")
def sync_integrity_alert(sender, *, version, **_kwargs):
    enqueue_on_commit("monitoring.integrity_alert_sync", version.pk)
