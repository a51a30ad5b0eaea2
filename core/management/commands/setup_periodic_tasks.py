from django.core.management.base import BaseCommand

from core.schedules import setup_periodic_tasks


class Command(BaseCommand):
    help = ("Create or update every periodic task (core/schedules.py) in the beat schedule. "
            "`migrate` runs it too.")

    def handle(self, *args, **options):
        done = setup_periodic_tasks()
        self.stdout.write("\n".join(done) if done else "every periodic task is up to date")
