"""Our registry rows in MLflow's shapes (mlflow/protos/model_registry.proto's field names).

- `version` is the per-model integer sequence (`ModelVersion.number`), as text; our SemVer is
  the tag `semver`.
- `current_stage` maps our stages to MLflow's four.
- Registered models list their aliases as `[{alias, version}]`; model versions list the
  names of the aliases pointing at them (MLflow's proto: a list of strings).
"""

from __future__ import annotations

from interop import rules
from registry.models import ModelVersion, RegisteredModel, Stage

STAGE_TO_MLFLOW = {
    Stage.PRODUCTION: "Production",
    Stage.STAGING: "Staging",
    Stage.EXPERIMENT: "None",
    Stage.ARCHIVED: "Archived",
}
MLFLOW_TO_STAGE = {name.lower(): stage for stage, name in STAGE_TO_MLFLOW.items()}
ARTIFACT_ROOT = "registry"  # mlflow-artifacts:/registry/<name>/<number>/


def millis(moment) -> int:
    return int(moment.timestamp() * 1000)


def artifact_path(name: str, number: int) -> str:
    return f"{ARTIFACT_ROOT}/{name}/{number}"


def download_uri(version: ModelVersion) -> str:
    """Resolved by the client against its tracking URI: `<tracking
    URI>/api/2.0/mlflow-artifacts/artifacts/registry/<name>/<number>`."""
    return f"mlflow-artifacts:/{artifact_path(version.model.name, version.number)}"


def _tags(pairs) -> list[dict]:
    return [{"key": key, "value": "" if value is None else str(value)} for key, value in pairs]


def alias_pairs(model: RegisteredModel, production: ModelVersion | None) -> list[dict]:
    """[{alias, version}]: the routing aliases on the production version, then the stored."""
    pairs = []
    if production is not None:
        pairs += [{"alias": alias, "version": str(production.number)}
                  for alias in sorted(rules.ROUTING_ALIASES)]
    pairs += [{"alias": row.alias, "version": str(row.version.number)}
              for row in model.aliases.all()]
    return pairs


def version_aliases(version: ModelVersion) -> list[str]:
    names = sorted(rules.ROUTING_ALIASES) if version.stage == Stage.PRODUCTION else []
    return names + [row.alias for row in version.aliases.all()]


def model_version(version: ModelVersion) -> dict:
    tags = [("semver", version.version), ("stage", version.stage),
            ("framework", version.framework), ("sha256", version.sha256 or "")]
    if version.algorithm:
        tags.append(("algorithm", version.algorithm))
    tags += [(label, "") for label in version.tags]
    return {
        "name": version.model.name,
        "version": str(version.number),
        "creation_timestamp": millis(version.created_at),
        "last_updated_timestamp": millis(version.updated_at),
        "user_id": version.created_by.get_username(),
        "current_stage": STAGE_TO_MLFLOW[version.stage],
        "description": version.description,
        "source": download_uri(version),
        "run_id": "",
        "run_link": "",
        "status": "READY",
        "status_message": ("a file failed its sha256 check: not served"
                           if version.integrity_failed_at else ""),
        "tags": _tags(tags),
        "aliases": version_aliases(version),
    }


def latest_per_stage(versions, stages=None) -> list[ModelVersion]:
    """MLflow's `latest_versions`: the highest-numbered version of each stage (of `stages`,
    our stage names, when given), in stage order."""
    best: dict[str, ModelVersion] = {}
    for version in versions:
        if stages is not None and version.stage not in stages:
            continue
        if version.stage not in best or version.number > best[version.stage].number:
            best[version.stage] = version
    return [best[stage] for stage in Stage.values if stage in best]


def registered_model(model: RegisteredModel) -> dict:
    """`model` with `versions` (and their aliases) and `aliases` prefetched."""
    versions = list(model.versions.all())
    production = next((v for v in versions if v.stage == Stage.PRODUCTION), None)
    tags = [("team", model.team.name), ("task_type", model.task_type)]
    tags += [(label, "") for label in model.tags]
    return {
        "name": model.name,
        "creation_timestamp": millis(model.created_at),
        "last_updated_timestamp": millis(max([model.updated_at,
                                              *(v.updated_at for v in versions)])),
        "user_id": model.owner.get_username(),
        "description": model.description,
        "latest_versions": [model_version(v) for v in latest_per_stage(versions)],
        "tags": _tags(tags),
        "aliases": alias_pairs(model, production),
    }
