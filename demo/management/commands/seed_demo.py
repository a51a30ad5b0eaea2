import time

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from demo import seeding as demo


class Command(BaseCommand):
    help = (
        "Train the five library-analytics demo models on generated data, register them at two "
        "or three versions each and take them through validation, approval and deployment to "
        "their stages. Running it again finishes what an interrupted run began and leaves a "
        "complete demo as it is."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        self.stdout.write("Training, registering, validating and deploying the demo models:")
        try:
            count = demo.seed(log=self.stdout.write)
        except ApplicationError as exc:
            hint = ""
            if exc.code == "store_inconsistent":
                hint = " (the store holds files of an earlier demo: `make clean`, then `make run`)"
            raise CommandError(f"seeding the demo stopped: {exc.message}{hint}") from None
        self.stdout.write(self.style.SUCCESS(
            f"Registered {count} versions in {time.monotonic() - started:.1f} s."
        ))
