from django.conf import settings
from django.db import models


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("audit events are append-only: they cannot be updated")

    def delete(self):
        raise PermissionError("audit events are append-only: they cannot be deleted")


class AuditEvent(models.Model):
    """One change of state, frozen: names are copied as strings so the event outlives them.

    Events form a hash chain: `hash` covers every field and `prev_hash`, the hash of the
    event with the previous `seq`. `manage.py verify_audit` walks the chain. The database
    refuses UPDATE and DELETE on this table (a trigger), and so does the ORM.
    """

    seq = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,  # the event must survive the deletion of its actor
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300)
    model_name = models.CharField(max_length=64, blank=True, db_index=True)
    # Canonical JSON text, hashed as stored (a JSON column could re-encode numbers).
    before = models.TextField(blank=True)
    after = models.TextField(blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("audit events are append-only: they cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only: they cannot be deleted")


class AuditChainHead(models.Model):
    """The single row that every audit write locks: the last seq and hash of the chain."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)
