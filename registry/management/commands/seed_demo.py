import time

from django.core.management.base import BaseCommand

from registry import demo
from registry.accounts import ensure_demo_people


class Command(BaseCommand):
    help = (
        "Train the five library-analytics demo models on generated data and register them at "
        "two or three versions each, spread over the stages. Models already registered are "
        "left alone, so running it twice is safe."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        people = ensure_demo_people(log=self.stdout.write)
        self.stdout.write("Training and registering the demo models:")
        done = demo.seed(actor=people["dana"], log=self.stdout.write)
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {len(done)} versions in {time.monotonic() - started:.1f} s."
            )
        )
