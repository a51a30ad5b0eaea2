"""Importing a model directory from the admin: upload a zip, read the plan, confirm or cancel.

The zip is checked member by member before anything is unpacked; a refused zip changes
nothing (rows, files under the store, the unpacked folder). Only admins import.
"""

from __future__ import annotations

import io
import json
import os
import stat
import time
import zipfile
from pathlib import Path

import pytest

from core.models import AuditEvent
from governance.admin.imports import SESSION_KEY
from governance.models import ApprovalRequest
from registry import reconcile
from registry.models import ModelVersion
from tests import helpers
from tests.registry import import_trees as trees

pytestmark = pytest.mark.django_db

UPLOAD = "/admin/registry/registeredmodel/import/"
REASON = "moving the library team in"


def zip_of(root: Path, top: str = "models") -> bytes:
    """`root` zipped as `zip -r` does: every member under the folder `top`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            name = f"{top}/{path.relative_to(root)}"
            if path.is_dir():
                archive.writestr(name + "/", b"")
            else:
                archive.write(path, name)
    return buffer.getvalue()


def zip_with(members: list[tuple[str, bytes]], *, mode: int | None = None,
             odd: str | None = None) -> bytes:
    """A zip of `members`; `odd` names one more member whose Unix mode is `mode`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
        if odd is not None:
            info = zipfile.ZipInfo(odd)
            info.create_system = 3
            info.external_attr = (mode or 0) << 16
            archive.writestr(info, b"/etc/passwd")
    return buffer.getvalue()


def upload(client, data: bytes, *, name="library.zip", trust="", model="", reason=REASON):
    fields = {"archive": _file(data, name), "reason": reason, "model": model}
    if trust:
        fields["trust_stages"] = "on"
    return client.post(UPLOAD, fields)


def _file(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/zip")


def incoming_folders(store_root) -> list[Path]:
    return sorted(p for p in (Path(store_root) / ".incoming").iterdir() if p.is_dir())


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def library_zip(tmp_path):
    return zip_of(trees.library_tree(tmp_path / "source" / "models"))


def test_an_uploaded_zip_shows_the_plan_then_imports_on_confirm(admin_client, admin_user,
                                                                library_zip, store_root):
    rows = helpers.row_counts()
    response = upload(admin_client, library_zip)
    assert response.status_code == 302, response.content.decode()[:2000]
    (folder,) = incoming_folders(store_root)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # private
    plan = admin_client.get(response["Location"])
    assert plan.status_code == 200
    assert helpers.row_counts() == rows  # reading the plan changes nothing
    page = plan.content.decode()
    for version in ("overdue_prediction 1.0.0", "overdue_prediction 0.9.2",
                    "churn_prediction 1.1.0", "ensemble_overdue_prediction 1.0.0"):
        assert f'data-version="{version}"' in page
    assert "v0.9.2 → 0.9.2" in page
    assert "land in staging, with an approval request to production" in page
    assert "metadata_v0.8.1.json" in page  # what is left out, with why
    assert "Import 4 versions" in page

    done = admin_client.post(response["Location"], {"confirm": "1"})
    assert done.status_code == 200, done.content.decode()[:2000]
    assert "4 imported" in done.content.decode()
    found = {(v.model.name, v.version): v.stage for v in ModelVersion.objects.select_related(
        "model")}
    assert found == {("overdue_prediction", "1.0.0"): "staging",
                     ("overdue_prediction", "0.9.2"): "archived",
                     ("churn_prediction", "1.1.0"): "staging",
                     ("ensemble_overdue_prediction", "1.0.0"): "experiment"}
    assert ApprovalRequest.objects.filter(status="pending").count() == 1
    events = AuditEvent.objects.filter(action="version.imported")
    assert events.count() == 4
    event = events.get(object_repr__startswith="overdue_prediction 1.0.0")
    after = json.loads(event.after)
    assert (event.actor_name, event.reason) == ("ada", REASON)
    assert after["source_root"].startswith("uploaded zip library.zip (sha256 ")
    assert after["source"] == "production/overdue_prediction"
    # The unpacked folder is gone, the session forgets it, and the store agrees with the rows.
    assert incoming_folders(store_root) == []
    assert admin_client.session.get(SESSION_KEY) == {}
    assert reconcile.reconcile(repair=False) == []
    # The same zip again: the plan says so, and nothing is imported twice.
    again = admin_client.get(upload(admin_client, library_zip)["Location"])
    assert "already imported as" in again.content.decode()
    assert "Import 4 versions" not in again.content.decode()


def test_trusted_stages_deploy_the_production_version(admin_client, library_zip):
    response = upload(admin_client, library_zip, trust="on")
    assert "land in production at once (“Trust the source&#x27;s stages”: deployed by the " \
        "import)" in admin_client.get(response["Location"]).content.decode()
    admin_client.post(response["Location"], {"confirm": "1"})
    assert ModelVersion.objects.get(model__name="overdue_prediction",
                                    version="1.0.0").stage == "production"


def test_a_zip_of_one_model_takes_the_model_name_given(admin_client, tmp_path):
    data = zip_of(trees.plain_tree(tmp_path / "plain"), top="whatever")
    response = upload(admin_client, data, model="churn")
    admin_client.post(response["Location"], {"confirm": "1"})
    assert list(ModelVersion.objects.values_list("model__name", "version")) == [
        ("churn", "1.0.0")]


def test_cancel_removes_the_unpacked_folder_and_imports_nothing(admin_client, library_zip,
                                                                store_root):
    response = upload(admin_client, library_zip)
    assert len(incoming_folders(store_root)) == 1
    cancelled = admin_client.post(response["Location"], {"cancel": "1"})
    assert cancelled.status_code == 302
    assert incoming_folders(store_root) == []
    assert not ModelVersion.objects.exists()
    assert not AuditEvent.objects.filter(action="version.imported").exists()
    # The plan page is gone with it: a clear message, not an error page.
    gone = admin_client.get(response["Location"], follow=True)
    assert "no longer waiting" in gone.content.decode()


GOOD = ("models/churn.joblib", trees.model(1))


@pytest.mark.parametrize("members, odd, mode, why", [
    ([GOOD, ("models/../evil.joblib", b"x")], None, None, "has a &#x27;..&#x27;"),
    ([GOOD, ("../evil", b"x")], None, None, "has a &#x27;..&#x27;"),
    ([GOOD, ("/abs/model.joblib", b"x")], None, None, "is an absolute path"),
    ([GOOD, ("C:/model.joblib", b"x")], None, None, "is an absolute path"),
    ([GOOD, ("models\\..\\evil", b"x")], None, None, "backslash"),
    ([GOOD], "models/link.joblib", stat.S_IFLNK | 0o777, "is a symbolic link"),
    ([GOOD], "models/dev", stat.S_IFCHR | 0o666, "is a device file"),
    pytest.param([GOOD, ("models/churn.joblib", b"again")], None, None, "appears twice",
                 marks=pytest.mark.filterwarnings("ignore:Duplicate name")),
    ([("models/", b"")], None, None, "holds no files"),
], ids=["dotdot-inside", "dotdot", "absolute", "drive", "backslash", "symlink", "device",
        "duplicate", "empty"])
def test_a_zip_with_an_unsafe_member_is_refused_and_changes_nothing(
        admin_client, store_root, members, odd, mode, why):
    data = zip_with(members, odd=odd, mode=mode)
    with helpers.Unchanged(allow_actions=()):
        response = upload(admin_client, data)
    assert response.status_code == 400
    page = response.content.decode()
    assert "the zip was refused" in page and why in page
    assert incoming_folders(store_root) == []
    assert SESSION_KEY not in admin_client.session or admin_client.session[SESSION_KEY] == {}


def test_too_many_members_are_refused(admin_client, settings, store_root):
    settings.IMPORT_ZIP_MAX_MEMBERS = 3
    data = zip_with([GOOD, *[(f"models/notes{i}.txt", b"x") for i in range(3)]])
    with helpers.Unchanged(allow_actions=()):
        response = upload(admin_client, data)
    assert response.status_code == 400
    assert "it has 4 members; at most 3" in response.content.decode()


@pytest.mark.parametrize("setting, why", [
    ("IMPORT_ZIP_MAX_BYTES", "(IMPORT_ZIP_MAX_BYTES)"),
    ("IMPORT_ZIP_MEMBER_MAX_BYTES", "(IMPORT_ZIP_MEMBER_MAX_BYTES)"),
])
def test_a_zip_too_big_unpacked_is_refused(admin_client, settings, store_root, setting, why):
    # 3 MB of zeros: a few kB zipped, over the limit unpacked (a small zip bomb).
    data = zip_with([GOOD, ("models/notes.txt", b"\0" * 3_000_000)])
    compressed = io.BytesIO()
    with zipfile.ZipFile(compressed, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in zipfile.ZipFile(io.BytesIO(data)).infolist():
            archive.writestr(info.filename, zipfile.ZipFile(io.BytesIO(data)).read(info))
    assert len(compressed.getvalue()) < 100_000
    setattr(settings, setting, 1_000_000)
    with helpers.Unchanged(allow_actions=()):
        response = upload(admin_client, compressed.getvalue())
    assert response.status_code == 400
    assert why in response.content.decode()


def test_a_member_larger_than_it_declares_stops_the_unpacking(admin_client, store_root):
    """A zip bomb declaring less than it holds: reading stops at the declared size (zipfile
    does, and so does the unpacking, in case), the check of its CRC fails, the zip is refused
    with a message rather than an error page, and nothing is left."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("models/churn.joblib", trees.model(1))
        archive.writestr("models/notes.txt", b"A" * 5000)
    raw = bytearray(buffer.getvalue())
    # Declare 10 bytes for notes.txt in the central directory (its local header says 5000).
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = archive.getinfo("models/notes.txt")
    central = raw.rfind(b"PK\x01\x02", 0, raw.rfind(b"models/notes.txt") + 1)
    raw[central + 24:central + 28] = (10).to_bytes(4, "little")
    with helpers.Unchanged(allow_actions=()):
        response = upload(admin_client, bytes(raw))
    assert response.status_code == 400, info
    assert "&#x27;models/notes.txt&#x27; cannot be read" in response.content.decode()
    assert incoming_folders(store_root) == []


def test_a_file_that_is_no_zip_is_refused(admin_client, store_root):
    with helpers.Unchanged(allow_actions=()):
        response = upload(admin_client, b"not a zip at all")
    assert response.status_code == 400
    assert "not a zip file" in response.content.decode()


def test_a_reason_is_required(admin_client, library_zip, store_root):
    with helpers.Unchanged(allow_actions=()):
        response = upload(admin_client, library_zip, reason="  ")
    assert response.status_code == 400
    assert incoming_folders(store_root) == []


def test_an_approver_gets_403_and_the_attempt_is_audited(client, approver, library_zip,
                                                         store_root):
    client.force_login(approver)
    assert client.get(UPLOAD).status_code == 403
    with helpers.Unchanged():
        assert upload(client, library_zip).status_code == 403
    assert incoming_folders(store_root) == []
    denied = AuditEvent.objects.get(action="permission.denied")
    assert json.loads(denied.after) == {"attempted": "version.import"}
    assert client.get(UPLOAD + "0" * 32 + "/").status_code == 403
    # No button for them on the models' list; the admin has one, and one on the dashboard.
    assert "Import a model directory" not in client.get(
        "/admin/registry/registeredmodel/").content.decode()


def test_admins_find_the_page_from_the_models_list_and_the_dashboard(admin_client):
    assert UPLOAD in admin_client.get("/admin/registry/registeredmodel/").content.decode()
    assert UPLOAD in admin_client.get("/admin/").content.decode()


def test_another_admins_upload_cannot_be_confirmed(admin_client, library_zip,
                                                   django_user_model):
    from django.test import Client

    from core import roles
    from tests.conftest import _person

    response = upload(admin_client, library_zip)
    other = Client()
    other.force_login(_person(django_user_model, "adam", roles.ADMIN, is_staff=True))
    refused = other.post(response["Location"], {"confirm": "1"}, follow=True)
    assert "no longer waiting" in refused.content.decode()
    assert not ModelVersion.objects.exists()


def test_reconcile_removes_our_unpacked_folders_after_a_day_and_nothing_else(
        admin_client, library_zip, store_root):
    upload(admin_client, library_zip)
    (ours,) = incoming_folders(store_root)
    young = Path(store_root) / ".incoming" / ("import-" + "b" * 32)
    young.mkdir()
    lookalike = Path(store_root) / ".incoming" / "import-not-ours"
    lookalike.mkdir()
    day_ago = time.time() - reconcile.IMPORT_FOLDER_MAX_AGE_SECONDS - 60
    for path in (ours, lookalike):
        os.utime(path, (day_ago, day_ago))
    findings = reconcile.reconcile()
    assert [(f.kind, f.repaired) for f in findings] == [("stale_import", True)]
    assert not ours.exists() and young.exists() and lookalike.exists()
