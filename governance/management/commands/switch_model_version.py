"""Version switching from the command line, with the options of the team's old script.

    python manage.py switch_model_version --list [--model NAME]
    python manage.py switch_model_version [--model NAME] --info production|staging|archive/<version>
    python manage.py switch_model_version --model NAME --env staging|archive/<version> --dry-run
    python manage.py switch_model_version --model NAME --env archive/1.0.0 --user admin --reason "..."

`--env X` makes X's version the production one. It is an admin's forced switch: it goes
through the same governance service as every other move (folders by rename, a deployment
record, the audit trail), skips the approval queue, and records who (`--user`, who must hold
the admin role) and why (`--reason`).
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from governance import selectors, services
from registry import store
from registry.models import ModelVersion, RegisteredModel, Stage
from registry.selectors import SEMVER_DESC


class Command(BaseCommand):
    help = "List versions, show one, or switch which version is in production (admin only)."

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--list", action="store_true", help="Versions of every model by stage.")
        action.add_argument("--info", metavar="ENV",
                            help="production, staging or archive/<version>")
        action.add_argument("--env", metavar="ENV",
                            help="Make this version the production one: staging or "
                            "archive/<version> (production: nothing to do)")
        parser.add_argument("--model", help="The registered model (implied when there is "
                            "only one).")
        parser.add_argument("--dry-run", action="store_true", help="Show the plan; change nothing.")
        parser.add_argument("--user", help="Who is switching (an admin).")
        parser.add_argument("--reason", default="", help="Why (recorded in the audit trail).")

    def handle(self, *args, **options):
        if options["list"]:
            return self._list(options["model"])
        if not options["model"]:
            # The team's old script served one model; with one registered, it is implied.
            names = list(RegisteredModel.objects.values_list("name", flat=True)[:2])
            if len(names) != 1:
                raise CommandError("--model is needed with --info and --env when more than "
                                   "one model is registered")
            options["model"] = names[0]
        try:
            model = RegisteredModel.objects.get(name=options["model"])
        except RegisteredModel.DoesNotExist:
            raise CommandError(f"no registered model named {options['model']!r}") from None
        if options["info"]:
            return self._info(self._resolve(model, options["info"]))
        return self._switch(model, options)

    def _list(self, name):
        models = RegisteredModel.objects.order_by("name")
        if name:
            models = models.filter(name=name)
        for model in models:
            self.stdout.write(self.style.MIGRATE_HEADING(model.name))
            for stage in (Stage.PRODUCTION, Stage.STAGING, Stage.EXPERIMENT, Stage.ARCHIVED):
                versions = model.versions.filter(stage=stage).order_by(*SEMVER_DESC)
                label = "archive" if stage == Stage.ARCHIVED else stage
                listed = ", ".join(v.version for v in versions) or "—"
                self.stdout.write(f"  {label:11} {listed}")

    def _resolve(self, model, env: str) -> ModelVersion:
        env = env.strip().rstrip("/")
        head, _, rest = env.partition("/")
        if head in ("archive", "archived"):
            number = rest[1:] if rest[:1] in "vV" and rest[1:2].isdigit() else rest
            version = model.versions.filter(version=number, stage=Stage.ARCHIVED).first()
            if version is None:
                raise CommandError(f"{model.name} has no archived version {rest!r}; "
                                   "see --list")
            return version
        if head in (Stage.PRODUCTION, Stage.STAGING) and not rest:
            version = model.versions.filter(stage=head).order_by(*SEMVER_DESC).first()
            if version is None:
                raise CommandError(f"{model.name} has no version in {head}")
            return version
        raise CommandError(f"{env!r}: use production, staging or archive/<version>")

    def _info(self, version: ModelVersion):
        latest = selectors.latest_validation(version)
        folder = store.locate_version_dir(version.model.name, version.version, version.stage)
        info = {
            "model": version.model.name,
            "version": version.version,
            "stage": version.stage,
            "folder": store.relative(folder) if folder else None,
            "algorithm": version.algorithm,
            "framework": f"{version.framework} {version.framework_version}".strip(),
            "metrics": version.metrics,
            "files": [{"name": f.filename, "role": f.role, "size": f.size, "sha256": f.sha256}
                      for f in version.files.all()],
            "validation": f"#{latest.pk} {latest.status}: {latest.summary}" if latest else None,
            "registered": f"{version.created_at:%Y-%m-%d %H:%M} by {version.created_by}",
            **{k: v for k, v in version.lifecycle.items() if k != "history"},
        }
        self.stdout.write(json.dumps(info, indent=2, default=str))

    def _switch(self, model, options):
        if options["env"].strip().rstrip("/") == Stage.PRODUCTION:
            current = model.versions.filter(stage=Stage.PRODUCTION).first()
            self.stdout.write(f"{model.name}: production is already "
                              f"{current.version if current else 'empty'}; nothing to do")
            return
        version = self._resolve(model, options["env"])
        current = model.versions.filter(stage=Stage.PRODUCTION).first()
        steps = []
        if current is not None:
            steps.append(f"move {store.STAGE_FOLDERS['production']}/{model.name}/v{current.version}"
                         f" → archived/ (retired, replaced by {version.version})")
        steps.append(f"move {store.STAGE_FOLDERS[version.stage]}/{model.name}/v{version.version}"
                     " → production/")
        if version.stage == Stage.STAGING:
            steps.insert(0, "(staging → production: forced, without the approval queue)")
        if options["dry_run"]:
            self.stdout.write(f"Dry run for {model.name} — nothing changes:")
            for step in steps:
                self.stdout.write(f"  {step}")
            return
        if not options["user"] or not options["reason"].strip():
            raise CommandError("a switch records who and why: give --user and --reason "
                               "(or --dry-run)")
        try:
            actor = get_user_model().objects.get(username=options["user"], is_active=True)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no active user {options['user']!r}") from None
        try:
            outcome = services.version_force_stage(version=version, to_stage=Stage.PRODUCTION,
                                                   actor=actor, reason=options["reason"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        deployment = outcome.deployment
        if deployment.status != "completed":
            raise CommandError(f"deployment #{deployment.pk} {deployment.status}: "
                               f"{deployment.error}")
        for step in steps:
            self.stdout.write(f"  {step}")
        self.stdout.write(self.style.SUCCESS(
            f"{model.name} {version.version} is in production (deployment #{deployment.pk}, "
            f"by {actor.get_username()}: {options['reason']})"))
