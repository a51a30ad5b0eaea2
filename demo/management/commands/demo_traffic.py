"""Traffic for the demo models, as a service would send it, optionally shifted.

    python manage.py demo_traffic --model overdue_prediction --requests 300
    python manage.py demo_traffic --model overdue_prediction --shift member_past_overdues=2

Rows come from the demo's own data generator (a fresh seed), so unshifted traffic looks like
the reference sample; `--shift FEATURE=K` moves one feature by K of its standard deviations.
With `--feedback`, the true outcome of that share of rows is reported back, as a service that
learns what really happened would. Predictions go through the same service as the API.
"""

from __future__ import annotations

import uuid

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from demo import training as demo
from predictions import logs, services
from predictions.inputs import InputError
from predictions.serving import NotServable


class Command(BaseCommand):
    help = "Send demo traffic (optionally shifted) to a demo model's production version."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="A demo model, e.g. overdue_prediction")
        parser.add_argument("--requests", type=int, default=300)
        parser.add_argument("--rows", type=int, default=5, help="Rows per request.")
        parser.add_argument("--shift", action="append", default=[], metavar="FEATURE=K",
                            help="Move FEATURE by K standard deviations (repeatable).")
        parser.add_argument("--feedback", type=float, default=0.0, metavar="SHARE",
                            help="Report the true outcome of this share of rows (0 to 1).")
        parser.add_argument("--user", default="loans-service", help="Who calls (a service "
                            "account by default).")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **options):
        spec = next((m for m in demo.catalogue() if m.name == options["model"]), None)
        if spec is None:
            raise CommandError(f"{options['model']!r} is not a demo model: "
                               f"{', '.join(m.name for m in demo.catalogue())}")
        try:
            user = get_user_model().objects.get(username=options["user"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {options['user']!r} (run seed_demo first)") from None
        rng = np.random.default_rng(options["seed"])
        data = spec.dataset(rng)
        X, y = np.asarray(data["X"], dtype=float), data.get("y")
        for item in options["shift"]:
            name, _, amount = item.partition("=")
            if name not in spec.features:
                raise CommandError(f"--shift: {name!r} is not a feature of {spec.name} "
                                   f"({', '.join(spec.features)})")
            try:
                k = float(amount)
            except ValueError:
                raise CommandError(f"--shift {item}: K must be a number") from None
            column = spec.features.index(name)
            X[:, column] += k * X[:, column].std()
        answered = failed = labelled = 0
        for _ in range(options["requests"]):
            pick = rng.integers(0, len(X), options["rows"])
            try:
                answer = services.predict(model_name=spec.name, payload={"inputs": X[pick].tolist()},
                                          user=user, request_id=uuid.uuid4().hex)
            except (InputError, NotServable, services.ModelFailed) as exc:
                failed += 1
                self.stderr.write(f"refused: {getattr(exc, 'message', exc)}")
                continue
            answered += 1
            if y is not None and options["feedback"] > 0:
                items = [{"row": i, "actual": y[row].item()} for i, row in enumerate(pick)
                         if rng.random() < options["feedback"]]
                if items:  # (feedback_record writes the buffered log first)
                    services.feedback_record(request_id=answer.request_id, items=items,
                                             actor=user)
                    labelled += len(items)
        logs.flush()
        shifted = f", shifted: {', '.join(options['shift'])}" if options["shift"] else ""
        self.stdout.write(self.style.SUCCESS(
            f"{spec.name}: {answered} requests answered ({answered * options['rows']} rows), "
            f"{failed} refused, {labelled} outcomes reported{shifted}. "
            f"Run `python manage.py monitor --model {spec.name}` to see the figures now."))
