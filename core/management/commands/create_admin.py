from django.core.management.base import BaseCommand

from core.accounts import ensure_admin


class Command(BaseCommand):
    help = "Create the superuser 'admin' with a random password, printed once (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username="admin", **options):
        ensure_admin(username, log=lambda line: self.stdout.write(self.style.SUCCESS(line)))
