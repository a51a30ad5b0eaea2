"""One monitoring pass by hand: `python manage.py monitor --model overdue_prediction`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from monitoring import services
from registry.models import RegisteredModel


class Command(BaseCommand):
    help = ("Run one monitoring pass (drift, live performance, latency, errors, then the "
            "alert rules) for a model, or every served model, and print its figures.")

    def add_arguments(self, parser):
        parser.add_argument("--model", help="The registered model (default: every model "
                            "with a production version or a rollout).")

    def handle(self, *args, model=None, **options):
        if model:
            models = list(RegisteredModel.objects.filter(name=model))
            if not models:
                raise CommandError(f"no registered model named {model!r}")
        else:
            models = list(RegisteredModel.objects.filter(pk__in=services.models_to_monitor()))
        for registered in models:
            runs = services.monitoring_pass(model=registered)
            if not runs:
                self.stdout.write(f"{registered.name}: nothing in production or rolling out")
            for run in runs:
                self._print(run)
            for alert in registered.alerts.filter(status__in=["open", "acknowledged"]):
                self.stdout.write(self.style.WARNING(
                    f"  ALERT #{alert.pk} [{alert.severity}, {alert.status}] {alert.title}"))

    def _print(self, run) -> None:
        write = self.stdout.write
        write(f"{run.model.name} {run.version.version} ({run.route}): {run.status} — "
              f"{run.summary} [{run.duration_ms:.0f} ms]")
        for window, figures in run.figures.items():
            volume = figures["volume"]
            write(f"  last {window} min: {volume['requests']} requests, {volume['rows']} rows, "
                  f"{volume['failed']} failed, {volume['rejected']} rejected")
            drift = figures.get("drift")
            if drift and drift.get("skipped"):
                write(f"    drift: {drift['skipped']}")
            elif drift:
                for name, f in (drift.get("features") or {}).items():
                    if f is None:
                        continue
                    ks = (f" ks {f['ks']:.3f} (p {f['ks_pvalue']:.2g})" if "ks" in f else
                          f" chi2 {f['chi2']:.1f} (p {f['chi2_pvalue']:.2g})")
                    write(f"    {name:24} psi {f['psi']:.3f}  js {f['js']:.3f} {ks}")
                if drift.get("predictions"):
                    p = drift["predictions"]
                    write(f"    {'(predictions)':24} psi {p['psi']:.3f}  js {p['js']:.3f}")
            performance = figures.get("performance")
            if performance and not performance.get("skipped"):
                shown = {k: round(v, 4) for k, v in performance.items()
                         if isinstance(v, float)}
                write(f"    live performance on {performance['n']} labelled rows: {shown} "
                      f"(registered: {performance.get('registered')})")
            latency = figures.get("latency")
            if latency and not latency.get("skipped"):
                write(f"    latency p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms")
            errors = figures.get("errors")
            if errors and errors.get("error_rate") is not None:
                write(f"    error rate {errors['error_rate']:.2%}")
