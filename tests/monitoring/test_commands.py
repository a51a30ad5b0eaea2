"""manage.py monitor."""

from __future__ import annotations

from django.utils import timezone

from monitoring.models import MonitoringRun
from tests.monitoring.traffic import log_window


def test_the_monitor_command_prints_the_figures(monitored, capsys):
    from django.core.management import call_command

    log_window(monitored, end=timezone.now(), seed=1, shift_tenure=1.0)
    call_command("monitor", "--model", "loans")
    out = capsys.readouterr().out
    assert "loans 1.0.0 (production): alerting" in out
    assert "tenure" in out and "psi" in out
    assert MonitoringRun.objects.count() == 1
