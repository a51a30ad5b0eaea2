import time

from django.core.management.base import BaseCommand

from governance.audit import verify_chain


class Command(BaseCommand):
    help = ("Walk the audit chain and check every event's hash and its link to the one before. "
            "Names the first altered, removed or reordered event; exits 1 if there is one.")

    def handle(self, *args, **options):
        started = time.perf_counter()
        report = verify_chain()
        seconds = time.perf_counter() - started
        rate = f" ({report.checked / seconds:,.0f} events/s)" if seconds and report.checked else ""
        if report.ok:
            self.stdout.write(self.style.SUCCESS(
                f"audit chain intact: {report.checked} events verified in {seconds:.2f} s{rate}"))
            return
        self.stdout.write(self.style.ERROR(
            f"audit chain BROKEN at event #{report.first_bad_seq}: {report.problem} "
            f"({report.checked} events before it verified)"))
        raise SystemExit(1)
