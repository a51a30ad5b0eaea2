"""The gunicorn settings file, run as gunicorn runs it (a fresh interpreter)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_start_up_objects_are_frozen_out_of_the_collector_after_worker_start():
    script = (
        "import gc, runpy\n"
        "settings = runpy.run_path('config/gunicorn.py')\n"
        "assert gc.get_freeze_count() == 0\n"
        "settings['freeze_startup_objects']()\n"
        "print(gc.get_freeze_count())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 1000
