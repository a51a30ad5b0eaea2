"""The store never builds a path outside its root, and writes atomically."""

import io
import os
from pathlib import Path

import pytest

from registry import store
from tests import helpers


@pytest.mark.parametrize(
    "part", ["..", ".", "a/b", "a\\b", "/etc", "a\0b", ""],
)
def test_safe_join_refuses_parts_that_could_escape(part, store_root):
    with pytest.raises(store.UnsafeName):
        store.safe_join("experiments", part)


def test_safe_join_refuses_a_symlink_below_the_root(store_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (Path(store_root) / "experiments" / "evil").symlink_to(outside)
    with pytest.raises(store.UnsafeName, match="symbolic links"):
        store.safe_join("experiments", "evil", "v1.0.0")


def test_the_root_itself_may_be_a_symlink(settings, tmp_path):
    real = tmp_path / "volume"
    real.mkdir()
    link = tmp_path / "models-link"
    link.symlink_to(real)
    settings.MODEL_STORE_ROOT = link
    store.ensure_layout()
    assert store.version_dir("churn", "1.0.0", "staging") == real / "staging/churn/v1.0.0"


@pytest.mark.parametrize("name", ["../x", "a/b", "UPPER", "-lead", "", "a" * 65, "a\0"])
def test_model_names_are_strict(name):
    with pytest.raises(store.UnsafeName):
        store.validate_model_name(name)


@pytest.mark.parametrize("name", ["model.joblib", "scaler.pkl", "encoders_v2.pkl", "README.md"])
def test_plain_file_names_pass(name):
    assert store.validate_filename(name) == name


def test_ingest_hashes_while_copying(store_root):
    data = os.urandom(3 * store.CHUNK_SIZE + 17)
    incoming = store.ingest_stream(io.BytesIO(data), name="model.joblib", role="model")
    assert incoming.sha256 == helpers.sha256(data)
    assert incoming.size == len(data)
    assert incoming.path.parent == Path(store_root) / ".incoming"
    assert incoming.path.read_bytes() == data


def test_an_interrupted_ingest_leaves_no_file(store_root):
    class Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 0:
                raise OSError("connection reset")
            return super().read(size)

    with pytest.raises(OSError):
        store.ingest_stream(Broken(b"x" * (2 * store.CHUNK_SIZE)), name="m.pkl", role="model")
    assert list((Path(store_root) / ".incoming").iterdir()) == []


def test_atomic_write_replaces_whole_and_leaves_no_temp(store_root):
    target = Path(store_root) / "metadata" / "doc.json"
    store.atomic_write_bytes(target, b"one")
    store.atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["doc.json"]


def test_move_dir_refuses_to_overwrite(store_root):
    source = store.version_dir("m", "1.0.0", "staging")
    target = store.version_dir("m", "1.0.0", "production")
    source.mkdir(parents=True)
    target.mkdir(parents=True)
    with pytest.raises(store.StoreError):
        store.move_dir(source, target)
    assert source.is_dir()
