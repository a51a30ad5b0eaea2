import json

from django.core.management.base import BaseCommand

from governance.services import reconcile


class Command(BaseCommand):
    help = (
        "Finish or undo deployments a crash interrupted, then compare every version row with "
        "the store on disk and repair or report each difference. Exits 1 when a difference "
        "remains (with --check: when there is any)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Report only; change nothing on disk."
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print findings as JSON."
        )

    def handle(self, *args, check=False, as_json=False, **options):
        findings = reconcile(repair=not check)
        outstanding = [f for f in findings if not f.repaired]
        if as_json:
            self.stdout.write(json.dumps([f.as_dict() for f in findings], indent=2))
        else:
            for finding in findings:
                mark = "repaired" if finding.repaired else "REPORTED"
                line = f"{mark:9} {finding.kind:20} {finding.subject}: {finding.detail}"
                style = self.style.SUCCESS if finding.repaired else self.style.WARNING
                self.stdout.write(style(line))
            repaired = len(findings) - len(outstanding)
            summary = f"{repaired} repaired, {len(outstanding)} left to a person"
            if not findings:
                summary = "store and database agree"
            self.stdout.write(summary)
        if outstanding or (check and findings):
            raise SystemExit(1)
