from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.errors import ApplicationError
from predictions import services
from predictions.models import ApiToken


class Command(BaseCommand):
    help = ("Make a long-lived API token for a (service) account and print it once. "
            "--by names the admin who makes it (recorded in the audit trail).")

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="The account the token acts as.")
        parser.add_argument("--name", required=True, help="What uses it, e.g. loans-service.")
        parser.add_argument("--by", required=True, help="The admin making it.")
        parser.add_argument("--days", type=int, help="Expire after this many days.")
        parser.add_argument("--once", action="store_true",
                            help="Do nothing if the account already has a live token of this "
                            "name (e.g. `make run` a second time).")

    def handle(self, *args, user, name, by, days=None, once=False, **options):
        User = get_user_model()
        try:
            owner = User.objects.get(username=user)
            admin = User.objects.get(username=by)
        except User.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        if once:
            existing = ApiToken.objects.filter(user=owner, name=name, revoked_at=None).first()
            if existing is not None:
                self.stdout.write(f"{user} already has the API token {name!r} "
                                  f"(mgt_{existing.prefix}_…), printed when it was made; "
                                  "revoke it in the admin and run this again for a new one.")
                return
        expires = timezone.now() + timedelta(days=days) if days else None
        try:
            _token, plain = services.api_token_create(user=owner, name=name, actor=admin,
                                                      expires_at=expires)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if once:  # a person reads this output (make run), not a script
            self.stdout.write(self.style.SUCCESS(
                f"API token {name!r} for {user} (shown once, copy it now): {plain}"))
        else:
            self.stdout.write(plain)
