"""Import a team's existing model directory, keeping its versions, stages and history.

    python manage.py import_models PATH --dry-run
    python manage.py import_models PATH --as admin --reason "moving the library team in"
    python manage.py import_models PATH --as admin --reason "..." --trust-stages

The directory may be laid out as any of the team documents describe (stage folders,
`trained/`, a plain folder of model files): see docs/importing.md. `--dry-run` prints the
plan and changes nothing. Without it, each version is imported in its own transaction, as
an attested import by the admin named in `--as`; a second run imports nothing new.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from governance import services
from registry.importing import ImportPlan, plan_directory
from registry.importing.plan import KNOWN_KEYS
from registry.selectors import import_state


def describe(plan: ImportPlan, *, trust_stages: bool, write) -> None:
    write(f"Import plan for {plan.root}")
    write(f"  layout: {plan.layout}")
    if not plan.versions:
        write("  no model versions found")
    model = None
    for v in plan.versions:
        if v.model != model:
            model = v.model
            write(f"\n{model} ({v.task_type})")
        state = ("already imported" if v.already else "STOPPED" if v.problems else "to import")
        write(f"  {v.version}  [{state}]  source: {v.source}  (stage {v.stage})")
        write(f"    version: {v.version_note}")
        if not v.already and not v.problems:
            write(f"    lands in: {services.import_landing(v, trust_stages)}")
        for f in v.files:
            write(f"    {f.role:12} {f.name}  <- {f.relative}  ({f.size} bytes, sha256 "
                  f"{f.sha256[:12]}…)")
        columns = [k for k in KNOWN_KEYS if k in v.metadata]
        kept = sorted(k for k in v.metadata if k not in KNOWN_KEYS)
        write(f"    metadata: {', '.join(columns) or 'none'}"
              + (f"; kept as they are in metadata.json: {', '.join(kept)}" if kept else ""))
        for key, why in v.set_aside.items():
            write(f"    metadata {key}: kept as source_{key} ({why})")
        history = [f"created {v.created_at[:10]}" if v.created_at else "no creation date",
                   *([f"deployed {v.deployed_at[:10]}"] if v.deployed_at else [])]
        if v.lifecycle.get("retired_at"):
            history.append(f"retired {v.lifecycle['retired_at'][:10]}")
        if v.lifecycle.get("replaced_by"):
            history.append(f"replaced by {v.lifecycle['replaced_by']}")
        if v.lifecycle.get("reason"):
            history.append(f"reason: {v.lifecycle['reason']}")
        write(f"    history: {'; '.join(history)}")
        if v.documents:
            write(f"    read from: {', '.join(v.documents)}")
        if v.checksum:
            write(f"    checksum: verified ({v.checksum})")
        for warning in v.warnings:
            write(f"    note: {warning}")
        for problem in v.problems:
            write(f"    STOPPED: {problem}")
    if plan.skipped:
        write("\nSkipped (left in the source, not imported):")
        for skipped in plan.skipped:
            write(f"  {skipped.path}: {skipped.why}")
    write("\nVersion mapping:")
    for v in plan.versions:
        write(f"  {v.model}: {v.source_version or '(none)'} -> {v.version}")


class Command(BaseCommand):
    help = "Import an existing model directory (its versions, stages and history)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="The model directory to import (only read).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Print the plan; change nothing.")
        parser.add_argument("--trust-stages", action="store_true",
                            help="Make the source's production versions servable at once "
                            "(else they wait in staging for approval).")
        parser.add_argument("--reason", default="", help="Why (recorded with each version).")
        parser.add_argument("--as", dest="as_user", help="The admin importing (username).")
        parser.add_argument("--model", help="The model's name, for a directory holding one "
                            "model whose name it does not say (default: the folder's name).")

    def handle(self, *args, **options):
        write = self.stdout.write
        actor = None
        if not options["dry_run"]:
            if not options["as_user"]:
                raise CommandError("--as <admin username> is needed to import (or --dry-run)")
            actor = get_user_model().objects.filter(username=options["as_user"]).first()
            if actor is None:
                raise CommandError(f"no user named {options['as_user']!r}")
            refusal = services.import_refusal(actor, options["reason"])
            if refusal is not None:
                raise CommandError(refusal.message)
        existing, imported = import_state()
        try:
            plan = plan_directory(options["path"], model=options["model"], existing=existing,
                                  imported=imported)
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from None
        describe(plan, trust_stages=options["trust_stages"], write=write)
        if options["dry_run"]:
            write("\nDry run: nothing was changed.")
            return
        if not plan.to_import and not any(v.already for v in plan.versions):
            write("\nNothing to import.")
        try:
            results = services.directory_import(plan=plan, actor=actor, reason=options["reason"],
                                                trust_stages=options["trust_stages"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        write("\nResult:")
        counts: dict[str, int] = {}
        for result in results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
            write(f"  {result.planned.model} {result.planned.version}: {result.outcome}"
                  + (f" — {result.detail}" if result.detail else ""))
        if counts.get("imported", 0) == 0 and counts.get("already"):
            write(f"Nothing new to import: {counts['already']} version(s) were imported "
                  "before.")
        write("Summary: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
        not_done = counts.get("failed", 0) + counts.get("stopped", 0)
        if not_done:
            raise CommandError(f"{not_done} version(s) were not imported (see above); the "
                               "others were. Fix the cause and run the command again.")
