import time

from django.core.management.base import BaseCommand

from core import audit
from core.accounts import system_user


class Command(BaseCommand):
    help = ("Walk the audit chain: check every event's keyed hash and its link to the one before, "
            "and hold the chain against the signed checkpoints in AUDIT_CHECKPOINT_FILE. Names "
            "the first altered, re-hashed, removed or reordered event, or the events cut from the "
            "end; exits 1 if there is one. The verification is recorded in the chain "
            "(audit.verified).")

    def handle(self, *args, **options):
        started = time.perf_counter()
        report = audit.audit_chain_verify(actor=system_user())
        seconds = time.perf_counter() - started
        rate = f" ({report.checked / seconds:,.0f} events/s)" if seconds and report.checked else ""
        for note in report.notes:
            self.stdout.write(f"note: {note}")
        if report.ok:
            self.stdout.write(self.style.SUCCESS(
                f"audit chain intact: {report.checked} events verified in {seconds:.2f} s{rate}, "
                f"and against {report.checkpoints} checkpoints"))
            return
        if report.first_bad_seq is None:
            where, counted = "", f"{report.checked} events verified"
        else:
            where, counted = f" at event #{report.first_bad_seq}", (
                f"{report.checked} events before it verified")
        self.stdout.write(self.style.ERROR(f"audit chain BROKEN{where}: {report.problem} "
                                           f"({counted})"))
        raise SystemExit(1)
