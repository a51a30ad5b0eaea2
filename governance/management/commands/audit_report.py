from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from core.pdf import PdfUnavailable
from governance import reports
from registry.models import RegisteredModel


class Command(BaseCommand):
    help = ("Write the compliance report for a model or a date range: the events as CSV, or "
            "each version's story (files with sha256, registration, validations, requests, "
            "approvals, deployments, rollbacks, retirements) and the chain's status as HTML "
            "or PDF.")

    def add_arguments(self, parser):
        parser.add_argument("--model", help="Only this registered model.")
        parser.add_argument("--since", help="ISO date-time or date, e.g. 2026-11-01")
        parser.add_argument("--until", help="ISO date-time (exclusive), or a date (included)")
        parser.add_argument("--quarter", help="A calendar quarter, e.g. 2026Q4 (instead of "
                                              "--since/--until)")
        parser.add_argument("--format", choices=["html", "csv", "pdf"], default="html")
        parser.add_argument("--output", "-o", help="File to write (default: standard output; "
                                                   "required for pdf)")

    def handle(self, *args, model=None, since=None, until=None, quarter=None, format="html",
               output=None, **options):
        if format == "pdf" and not output:
            raise CommandError("--output: a PDF is written to a file; name one")
        if model and not RegisteredModel.objects.filter(name=model).exists():
            raise CommandError(f"no registered model named {model!r}")
        try:
            bounds = reports.report_period(since=since, until=until, quarter=quarter)
        except ApplicationError as exc:
            raise CommandError(f"--{exc.field}: {exc.message}") from None
        scope = reports.Scope(model=model, **bounds)
        # Rendered in full before the file is opened: a failure leaves no file behind.
        if format == "pdf":
            try:
                content = reports.report(scope).pdf()
            except PdfUnavailable as exc:
                raise CommandError(exc.message) from None
        else:
            content = reports.html(scope) if format == "html" else reports.csv_text(scope)
        if output:
            if isinstance(content, bytes):
                Path(output).write_bytes(content)
            else:
                Path(output).write_text(content)
            self.stdout.write(self.style.SUCCESS(f"wrote {output} ({scope.describe()}; "
                                                 f"range: {scope.range_text()})"))
        else:
            self.stdout.write(content, ending="")
