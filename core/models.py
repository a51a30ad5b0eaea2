"""The audit trail: append-only, hash-chained events, written by every app's services inside
the transaction of the change they record (core.audit.record)."""

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
        # The event must survive the deletion of its actor, unchanged: SET_NULL would UPDATE
        # the append-only row (the trigger refuses) and break its hash. `actor_name` keeps who.
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
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
        db_table = "governance_auditevent"  # it was born in governance; no data moved
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
    """The single row that every audit write locks: the last seq and hash of the chain.

    `keyed_from_seq` is the first event hashed with the chain key (HMAC); events before it
    were written before the key existed and carry a plain sha256. Empty until a keyed writer
    appends its first event to a chain that older code started.
    """

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)
    keyed_from_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "governance_auditchainhead"

    def __str__(self) -> str:
        return f"audit chain head: #{self.seq}"
