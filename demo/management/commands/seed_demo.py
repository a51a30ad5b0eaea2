import time

from django.core.management.base import BaseCommand

from demo import seeding as demo


class Command(BaseCommand):
    help = (
        "Train the five library-analytics demo models on generated data, register them at two "
        "or three versions each and take them through validation, approval and deployment to "
        "their stages. Models already registered are left alone, so running it twice is safe."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        self.stdout.write("Training, registering, validating and deploying the demo models:")
        count = demo.seed(log=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(
            f"Registered {count} versions in {time.monotonic() - started:.1f} s."
        ))
