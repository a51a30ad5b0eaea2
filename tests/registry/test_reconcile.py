"""`manage.py reconcile` repairs what it can account for and reports the rest."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from core.models import AuditEvent
from registry import store
from registry.reconcile import reconcile
from tests import helpers


@pytest.fixture
def registered(data_scientist, churn_model):
    return helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)


def _kinds(findings):
    return sorted((f.kind, f.repaired) for f in findings)


def _age(path: Path, seconds: int = 7200):
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_a_consistent_store_has_no_findings(registered):
    assert reconcile() == []


def test_a_folder_left_in_the_wrong_stage_is_moved_back_and_audited(registered, store_root):
    source = Path(store_root) / "experiments/churn_prediction/v1.0.0"
    target = Path(store_root) / "staging/churn_prediction/v1.0.0"
    target.parent.mkdir(parents=True)
    os.rename(source, target)  # as if a move crashed before its transaction committed

    assert _kinds(reconcile()) == [("wrong_stage_folder", True)]
    assert source.is_dir() and not target.exists()
    event = AuditEvent.objects.get(action="store.repaired")
    assert json.loads(event.after) == {"folder": "experiments/churn_prediction/v1.0.0"}
    assert reconcile() == []


def test_a_missing_file_is_reported_not_invented(registered, store_root):
    (Path(store_root) / "experiments/churn_prediction/v1.0.0/model.joblib").unlink()
    findings = reconcile()
    assert _kinds(findings) == [("missing_file", False)]
    assert "model.joblib" in findings[0].detail


def test_a_checksum_mismatch_is_reported_and_the_file_left_alone(registered, store_root):
    path = Path(store_root) / "experiments/churn_prediction/v1.0.0/model.joblib"
    path.write_bytes(b"tampered")
    findings = reconcile()
    assert _kinds(findings) == [("checksum_mismatch", False)]
    assert path.read_bytes() == b"tampered"


def test_a_missing_folder_is_reported(registered, store_root):
    folder = Path(store_root) / "experiments/churn_prediction/v1.0.0"
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    assert _kinds(reconcile()) == [("missing_folder", False)]


def test_a_stray_folder_and_a_stray_file_are_reported_and_kept(registered, store_root):
    stray = Path(store_root) / "production/unknown_model/v3.0.0"
    stray.mkdir(parents=True)
    (stray / "model.pkl").write_bytes(b"who knows")
    extra = Path(store_root) / "experiments/churn_prediction/v1.0.0/notes.txt"
    extra.write_text("hand-written")
    assert _kinds(reconcile()) == [("stray_file", False), ("stray_folder", False)]
    assert (stray / "model.pkl").exists() and extra.exists()


def test_stale_or_missing_metadata_is_rewritten_from_the_row(registered, store_root):
    path = Path(store_root) / "experiments/churn_prediction/v1.0.0/metadata.json"
    good = path.read_bytes()
    path.write_text('{"metrics": {"accuracy": 0.99}}')
    assert _kinds(reconcile()) == [("stale_metadata", True)]
    assert path.read_bytes() == good
    path.unlink()
    assert _kinds(reconcile()) == [("missing_metadata", True)]
    assert path.read_bytes() == good


def test_only_old_temporaries_of_our_own_are_removed(registered, store_root):
    old_upload = Path(store_root) / ".incoming/upload-old"
    young_upload = Path(store_root) / ".incoming/upload-young"
    old_upload.write_bytes(b"x")
    young_upload.write_bytes(b"y")
    _age(old_upload)
    old_tmp_dir = Path(store_root) / f"experiments/churn_prediction/.v2.0.0.tmp-{'a' * 32}"
    old_tmp_dir.mkdir()
    (old_tmp_dir / "model.joblib").write_bytes(b"z")
    _age(old_tmp_dir)
    lookalike = Path(store_root) / "experiments/churn_prediction/.v2.0.0.tmp-not-ours"
    lookalike.mkdir()
    _age(lookalike)

    kinds = _kinds(reconcile())
    assert ("stale_upload", True) in kinds and ("temp_folder", True) in kinds
    assert ("stray_entry", False) in kinds
    assert not old_upload.exists() and young_upload.exists()
    assert not old_tmp_dir.exists() and lookalike.exists()


def test_check_mode_changes_nothing(registered, store_root):
    source = Path(store_root) / "experiments/churn_prediction/v1.0.0"
    target = Path(store_root) / "archived/churn_prediction/v1.0.0"
    target.parent.mkdir(parents=True)
    os.rename(source, target)
    before = helpers.store_snapshot()
    assert _kinds(reconcile(repair=False)) == [("wrong_stage_folder", False)]
    assert helpers.store_snapshot() == before


def test_the_command_prints_and_exits_nonzero_while_something_is_left(registered, store_root,
                                                                      capsys):
    call_command("reconcile")
    assert "store and database agree" in capsys.readouterr().out
    (Path(store_root) / "experiments/churn_prediction/v1.0.0/model.joblib").unlink()
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile", "--json")
    assert exit_info.value.code == 1
    findings = json.loads(capsys.readouterr().out)
    assert findings[0]["kind"] == "missing_file"


def test_reconcile_rewrites_the_catalogue(registered, store_root):
    catalogue = Path(store_root) / store.METADATA_FOLDER / store.CATALOGUE_NAME
    catalogue.unlink(missing_ok=True)
    reconcile()
    assert "1.0.0" in json.loads(catalogue.read_text())["models"]["churn_prediction"]["versions"]


def test_the_files_the_repository_commits_into_the_store_are_not_findings(registered,
                                                                         store_root):
    for folder in [*store.STAGE_FOLDERS.values(), store.METADATA_FOLDER]:
        (Path(store_root) / folder).mkdir(exist_ok=True)
        (Path(store_root) / folder / ".gitkeep").write_bytes(b"")
    (Path(store_root) / "README.md").write_text("the store")
    (Path(store_root) / "experiments" / "README.md").write_text("experiments")
    assert reconcile(repair=False) == []
    call_command("reconcile", "--check")  # exits 0: raises SystemExit otherwise

    (Path(store_root) / "staging" / "notes.txt").write_text("not ours")
    assert _kinds(reconcile(repair=False)) == [("stray_file", False)]


def test_the_committed_store_layout_is_clean():
    """The checkout's own models/ folder, as cloned, is what the test above assumes."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    committed = subprocess.run(["git", "ls-files", "models"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.split()
    assert committed, "the store layout is committed"
    assert {Path(name).name for name in committed} <= store.LAYOUT_FILES


def test_a_catalogue_the_app_did_not_write_is_kept_aside_never_lost(registered, store_root):
    """A team points MODEL_STORE_ROOT at the models/ it already keeps (seed 004's layout),
    with its own metadata/model_registry.json."""
    from registry import catalogue

    theirs = Path(store_root) / store.METADATA_FOLDER / store.CATALOGUE_NAME
    original = json.dumps({"models": {"overdue_prediction": {"production": "v1.0.0",
                                                             "history": ["v0.9.2"]}}}).encode()
    theirs.write_bytes(original)

    with pytest.raises(SystemExit):
        call_command("reconcile", "--check")
    assert theirs.read_bytes() == original  # --check changes nothing
    assert _kinds(reconcile(repair=False)) == [("foreign_catalogue", False)]

    assert _kinds(reconcile()) == [("foreign_catalogue", True)]
    (kept,) = theirs.parent.glob("model_registry.kept-*.json")
    assert kept.read_bytes() == original
    assert catalogue.is_ours(theirs)
    assert "1.0.0" in json.loads(theirs.read_text())["models"]["churn_prediction"]["versions"]

    assert reconcile() == []  # its own catalogue is simply rewritten
    assert len(list(theirs.parent.glob("model_registry.kept-*.json"))) == 1


def test_the_worker_keeps_a_foreign_catalogue_aside_too(registered, store_root):
    from registry import catalogue

    theirs = Path(store_root) / store.METADATA_FOLDER / store.CATALOGUE_NAME
    theirs.write_text("not even JSON")
    kept = catalogue.rewrite()
    assert kept is not None and kept.read_text() == "not even JSON"
    assert catalogue.is_ours(theirs)


@pytest.fixture
def carded(data_scientist, churn_model):
    return helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist,
                                   meta=helpers.metadata(model_card={"limitations": "Few."}))


def test_a_missing_or_stale_model_card_it_wrote_is_rewritten(carded, store_root):
    from registry import cards

    path = Path(store_root) / "experiments/churn_prediction/v1.0.0" / store.CARD_FILENAME
    wanted = path.read_text()
    assert reconcile() == []
    path.unlink()
    assert _kinds(reconcile()) == [("missing_card", True)]
    assert path.read_text() == wanted
    path.write_text(wanted.replace("Few.", "Edited by hand."))
    assert _kinds(reconcile()) == [("stale_card", True)]
    assert path.read_text() == wanted == cards.card_file_text(carded)
    assert reconcile() == []


def test_a_model_card_md_it_did_not_write_is_reported_and_left_alone(carded, store_root):
    path = Path(store_root) / "experiments/churn_prediction/v1.0.0" / store.CARD_FILENAME
    path.write_text("# Someone's own card\n")
    findings = reconcile()
    assert _kinds(findings) == [("foreign_card", False)]
    assert path.read_text() == "# Someone's own card\n"
