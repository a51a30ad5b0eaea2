"""Importing a model directory from the admin: upload a zip of it, read the plan, confirm.

The same import as `manage.py import_models` (governance.services.directory_import), as the
admin logged in, with their reason. The zip is checked member by member and unpacked into a
private folder under the store's `.incoming/` (registry.importing.archive); the folder is
removed when the import is confirmed or cancelled (else reconcile removes it after a day).
Which upload waits for which admin is kept in their session, so nobody else confirms it.
"""

from __future__ import annotations

import hashlib
import logging

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core import roles
from core.errors import ApplicationError
from governance import services
from registry.importing import archive, plan_directory
from registry.importing.plan import KNOWN_KEYS
from registry.selectors import import_state

logger = logging.getLogger(__name__)
TRUST_OPTION = "“Trust the source's stages”"
SESSION_KEY = "model_imports"  # token -> what the admin asked for, until confirmed or cancelled


class ImportForm(forms.Form):
    archive = forms.FileField(
        label="Zip of the model directory",
        help_text="The team's model directory, zipped (any layout docs/importing.md lists).")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why: recorded with every version imported, in the audit trail.")
    trust_stages = forms.BooleanField(
        required=False, label=TRUST_OPTION.strip("“”"),
        help_text="A version the directory has in production serves at once (after its "
        "validation passes); unticked, it waits in staging for an approver.")
    model = forms.CharField(
        required=False, max_length=64, label="Model name",
        help_text="For a directory holding one model whose name it does not say (default: "
        "the folder's name).")


def may_import(user) -> bool:
    return roles.has_role(user, roles.ADMIN_ROLES)


class ModelImportPages:
    """The import pages, hung under the registered models' list (`import/`)."""

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_upload_view),
                 name="registry_registeredmodel_import"),
            path("import/<str:token>/", self.admin_site.admin_view(self.import_plan_view),
                 name="registry_registeredmodel_import_plan"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {"can_import": may_import(request.user), **(extra_context or {})})

    def _context(self, request, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.model._meta,
                "title": title, **extra}

    def import_upload_view(self, request):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        if not may_import(request.user):
            if request.method == "POST":  # an attempted import is audited, as the command's
                services.import_refusal(request.user, request.POST.get("reason", ""))
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                token = self._unpack(request, data)
            except ApplicationError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                self.message_user(request, exc.message, messages.ERROR)
            else:
                return HttpResponseRedirect(
                    reverse("admin:registry_registeredmodel_import_plan", args=[token]))
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(request, "admin/governance/import/upload.html", self._context(
            request, "Import a model directory", form=form,
            limits={"bytes": _size(settings.IMPORT_ZIP_MAX_BYTES),
                    "members": settings.IMPORT_ZIP_MAX_MEMBERS}), status=status)

    def _unpack(self, request, data) -> str:
        refusal = services.import_refusal(request.user, data["reason"])
        if refusal is not None:
            raise refusal
        upload = data["archive"]
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
        unpacked = archive.unpack(upload, filename=upload.name)
        try:  # the plan is read now, so that a name it refuses refuses the upload
            _plan(unpacked.root, data["model"])
        except (ValueError, OSError) as exc:
            archive.folder_remove(unpacked.token)
            field = "model" if data["model"] else "archive"
            raise ApplicationError(str(exc).replace(str(unpacked.root), upload.name),
                                   field=field) from None
        # (Uploads whose folders reconcile has removed are forgotten on the way.)
        pending = {token: asked for token, asked in request.session.get(SESSION_KEY, {}).items()
                   if archive.folder_path(token) is not None}
        pending[unpacked.token] = {
            "archive": upload.name, "sha256": digest.hexdigest(), "size": upload.size,
            "root": str(unpacked.root.relative_to(unpacked.folder)),
            "reason": data["reason"], "trust_stages": data["trust_stages"],
            "model": data["model"] or None, "members": unpacked.members,
            "left_out": unpacked.left_out}
        request.session[SESSION_KEY] = pending
        return unpacked.token

    def import_plan_view(self, request, token: str):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        if not may_import(request.user):
            raise PermissionDenied
        pending = request.session.get(SESSION_KEY, {})
        asked = pending.get(token)
        folder = archive.folder_path(token) if asked else None
        if asked is None or folder is None:
            self._forget(request, token)
            self.message_user(request, "This upload is no longer waiting (imported, cancelled, "
                              "or older than a day): upload the zip again.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:registry_registeredmodel_import"))
        if request.method == "POST" and "cancel" in request.POST:
            self._forget(request, token)
            self.message_user(request, f"Import of {asked['archive']} cancelled: nothing was "
                              "imported, and the unpacked files were removed.", messages.INFO)
            return HttpResponseRedirect(reverse("admin:registry_registeredmodel_changelist"))
        plan = _plan(folder / asked["root"], asked["model"])
        plan.source_label = (f"uploaded zip {asked['archive']} (sha256 {asked['sha256']}) "
                             f"by {request.user.get_username()}")
        if request.method == "GET" or "confirm" not in request.POST:
            return TemplateResponse(request, "admin/governance/import/plan.html", self._context(
                request, f"Import plan for {asked['archive']}", plan=plan, asked=asked,
                token=token, rows=_rows(plan, asked["trust_stages"])))
        try:
            results = services.directory_import(plan=plan, actor=request.user,
                                                reason=asked["reason"],
                                                trust_stages=asked["trust_stages"])
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:registry_registeredmodel_import"))
        finally:
            # Imported or not, the unpacked copy goes: a new attempt starts from the zip
            # (and finds the versions already imported).
            self._forget(request, token)
        counts: dict[str, int] = {}
        for result in results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        failed = counts.get("failed", 0) + counts.get("stopped", 0)
        self.message_user(request, f"Import of {asked['archive']}: {summary or 'nothing found'}."
                          + (" Fix what stopped the others and upload the zip again: versions "
                             "imported are not imported twice." if failed else ""),
                          messages.WARNING if failed else messages.SUCCESS)
        return TemplateResponse(request, "admin/governance/import/outcome.html", self._context(
            request, f"Imported {asked['archive']}", results=results, asked=asked))

    def _forget(self, request, token: str) -> None:
        archive.folder_remove(token)
        pending = request.session.get(SESSION_KEY, {})
        if token in pending:
            del pending[token]
            request.session[SESSION_KEY] = pending


def _plan(root, model):
    existing, imported = import_state()
    return plan_directory(root, model=model, existing=existing, imported=imported)


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.1f} {unit}".replace(".0 ", " ")
        n /= 1024
    return str(n)


def _rows(plan, trust_stages: bool) -> list[dict]:
    """Each planned version as the plan page's table shows it."""
    rows = []
    for v in plan.versions:
        history = [f"created {v.created_at[:10]}" if v.created_at else "no creation date",
                   *([f"deployed {v.deployed_at[:10]}"] if v.deployed_at else [])]
        for key, label in (("retired_at", "retired"), ("replaced_by", "replaced by"),
                           ("reason", "reason:")):
            if v.lifecycle.get(key):
                value = v.lifecycle[key]
                history.append(f"{label} {value[:10] if key == 'retired_at' else value}")
        rows.append({
            "v": v,
            "state": ("already imported" if v.already else "stopped" if v.problems
                      else "to import"),
            "lands": ("" if v.already or v.problems
                      else services.import_landing(v, trust_stages, TRUST_OPTION)),
            "files": [{"role": f.role, "name": f.name, "relative": f.relative,
                       "size": _size(f.size), "sha256": f.sha256} for f in v.files],
            "columns": [k for k in KNOWN_KEYS if k in v.metadata],
            "kept": sorted(k for k in v.metadata if k not in KNOWN_KEYS),
            "history": history,
        })
    return rows
