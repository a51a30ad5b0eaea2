from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from predictions import services
from registry.errors import ApplicationError


class Command(BaseCommand):
    help = ("Make a long-lived API token for a (service) account and print it once. "
            "--by names the admin who makes it (recorded in the audit trail).")

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="The account the token acts as.")
        parser.add_argument("--name", required=True, help="What uses it, e.g. loans-service.")
        parser.add_argument("--by", required=True, help="The admin making it.")
        parser.add_argument("--days", type=int, help="Expire after this many days.")

    def handle(self, *args, user, name, by, days=None, **options):
        User = get_user_model()
        try:
            owner = User.objects.get(username=user)
            admin = User.objects.get(username=by)
        except User.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        expires = timezone.now() + timedelta(days=days) if days else None
        try:
            _token, plain = services.api_token_create(user=owner, name=name, actor=admin,
                                                      expires_at=expires)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(plain)
