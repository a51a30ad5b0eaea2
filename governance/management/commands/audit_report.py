from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from core.filters import period
from governance import reports
from registry.models import RegisteredModel


class Command(BaseCommand):
    help = ("Write the compliance report for a model or a date range: the events as CSV, or "
            "each version's story (registration, validations, requests, approvals, "
            "deployments, rollbacks, retirements) and the chain's status as HTML.")

    def add_arguments(self, parser):
        parser.add_argument("--model", help="Only this registered model.")
        parser.add_argument("--since", help="ISO date-time or date, e.g. 2026-11-01")
        parser.add_argument("--until", help="ISO date-time (exclusive), or a date (included)")
        parser.add_argument("--format", choices=["html", "csv"], default="html")
        parser.add_argument("--output", "-o", help="File to write (default: standard output)")

    def handle(self, *args, model=None, since=None, until=None, format="html", output=None,
               **options):
        if model and not RegisteredModel.objects.filter(name=model).exists():
            raise CommandError(f"no registered model named {model!r}")
        try:
            bounds = period(since, until)
        except ApplicationError as exc:
            raise CommandError(f"--{exc.field}: {exc.message}") from None
        scope = reports.Scope(model=model, **bounds)
        text = reports.html(scope) if format == "html" else reports.csv_text(scope)
        if output:
            Path(output).write_text(text)
            self.stdout.write(self.style.SUCCESS(f"wrote {output} ({scope.describe()})"))
        else:
            self.stdout.write(text, ending="")
