import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from demo import seeding as demo
from predictions.models import PredictionLog


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
        # A little traffic, once, so that the prediction logs, the monitoring page and the
        # trace of a request id have something to show on a fresh demo.
        if not PredictionLog.objects.filter(model__name="overdue_prediction").exists():
            call_command("demo_traffic", model="overdue_prediction", requests=20, feedback=0.5,
                         seed=1, stdout=self.stdout, stderr=self.stderr)
        latest = (PredictionLog.objects.filter(model__name="overdue_prediction")
                  .order_by("-id").values_list("request_id", flat=True).first())
        if latest:
            self.stdout.write(f"A request id to trace (admin: Prediction logs -> Trace a "
                              f"prediction): {latest}")
