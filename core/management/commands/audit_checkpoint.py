from django.conf import settings
from django.core.management.base import BaseCommand

from core.audit import audit_checkpoint_write


class Command(BaseCommand):
    help = ("Append a signed checkpoint of the audit chain's head (seq and hash) to "
            "AUDIT_CHECKPOINT_FILE and the log, as the beat task does every minute.")

    def handle(self, *args, **options):
        checkpoint = audit_checkpoint_write()
        if checkpoint is None:
            self.stdout.write("the chain head has not moved since the last checkpoint")
        else:
            self.stdout.write(f"checkpoint of #{checkpoint['seq']} at {checkpoint['at']} "
                              f"appended to {settings.AUDIT_CHECKPOINT_FILE}")
