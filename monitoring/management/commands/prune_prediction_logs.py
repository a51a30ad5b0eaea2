"""Retention by hand: `python manage.py prune_prediction_logs [--dry-run] [--chunk-size N]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from monitoring import services
from monitoring.services.retention import MAX_CHUNK_SIZE


class Command(BaseCommand):
    help = ("Delete prediction logs and error records older than PREDICTION_LOG_RETENTION_DAYS "
            "(logs with feedback stay while the largest monitoring window reaches them): on "
            "PostgreSQL whole day partitions first, then in chunks each committed on its own, "
            "and print the counts. The daily beat task "
            "monitoring.prediction_logs_prune does the same.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true",
                            help="Count what would be deleted; delete nothing, record nothing.")
        parser.add_argument("--chunk-size", type=int, default=5000,
                            help=f"Rows per chunk (one short transaction each; default 5000, at "
                            f"most {MAX_CHUNK_SIZE}).")

    def handle(self, *args, dry_run=False, chunk_size=5000, **options):
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise CommandError(f"--chunk-size must be between 1 and {MAX_CHUNK_SIZE}")
        counts = services.prediction_logs_prune(dry_run=dry_run, chunk_size=chunk_size)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(
            f"{verb} {counts['prediction_logs']} prediction logs and "
            f"{counts['prediction_errors']} prediction errors created before "
            f"{counts['before']} ({counts['retention_days']} days) in {counts['chunks']} "
            f"chunks; kept {counts['kept_for_feedback']} logs with feedback that a monitoring "
            f"window still reaches (back to {counts['feedback_kept_after']}); "
            f"{'would drop' if dry_run else 'dropped'} {counts['partitions_dropped']} day "
            f"partitions (PostgreSQL)")
