"""`make clean` returns a checkout to its cloned state: what the demo, the tests and the
install made goes, every committed file stays."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _committed() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    return sorted(name for name in listed if name and (ROOT / name).is_file())


def test_make_clean_leaves_exactly_the_committed_files(tmp_path):
    checkout = tmp_path / "checkout"
    for name in _committed():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, checkout / name)
    made = [".venv/bin/python", "var/db.sqlite3", "var/log/worker.log",
            "models/production/overdue_prediction/v1.0.0/model.joblib",
            "models/archived/overdue_prediction/v0.9.2/metadata.json",
            "models/metadata/model_registry.json", "models/.incoming/upload-1",
            "registry/__pycache__/store.cpython-311.pyc", ".pytest_cache/v/cache/nodeids"]
    for name in made:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("made by a run")

    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "VENV"}}
    result = subprocess.run(["make", "clean"], cwd=checkout, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

    left = sorted(str(path.relative_to(checkout)) for path in checkout.rglob("*")
                  if path.is_file())
    assert left == _committed()
    assert (checkout / "models/production").is_dir()  # the layout stays


def test_make_clean_says_it_leaves_a_configured_database_alone(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy2(ROOT / "Makefile", checkout / "Makefile")
    (checkout / "models").mkdir()
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/somewhere"}
    result = subprocess.run(["make", "clean"], cwd=checkout, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "its database was left as it is" in result.stdout
