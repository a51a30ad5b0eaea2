"""The metadata of a version: validating what a client sends, and writing `metadata.json`.

Clients send the seeds' metadata.json as a JSON object. Known keys are type-checked and land in
columns; unknown keys (e.g. `model_architecture`, `business_impact`) are kept verbatim in
`extra_metadata` and written back into metadata.json. The document written to disk is always
rendered from the database row: the folder is a copy of the row, not the other way round.
"""

from __future__ import annotations

import json
import re

import orjson
from rest_framework import serializers

from core.limits import is_finite_number
from core.parsers import TooDeep, json_loads
from registry.cards import ModelCardField
from registry.fields import normalise_tags

DTYPES = ("float64", "float32", "int64", "int32", "bool", "string", "category")
# Columns a model takes as numbers (the others are text: categories, strings).
NUMERIC_DTYPES = frozenset({"float64", "float32", "int64", "int32", "bool"})
FRAMEWORK_ALIASES = {
    "sklearn": "sklearn",
    "scikit-learn": "sklearn",
    "scikit_learn": "sklearn",
    "torch": "torch",
    "pytorch": "torch",
    "torchscript": "torch",
    "onnx": "onnx",
}
METRIC_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Metrics where a smaller value is better (errors and losses); every other is higher-better.
# `is_lower_better` reads it (validation's regression check, live monitoring); a policy may
# name more (`Policy.lower_is_better`).
LOWER_IS_BETTER = ("mae", "mse", "rmse", "msle", "rmsle", "mape", "smape", "wape", "mase",
                   "loss", "log_loss", "logloss", "error", "error_rate", "brier", "brier_score",
                   "perplexity", "inertia", "davies_bouldin")
# Keys taken from the form fields or set by the registry; a client's value is checked, not stored.
IDENTITY_KEYS = {"name", "model_name", "version", "framework"}
# Keys the registry writes itself into metadata.json.
GENERATED_KEYS = {"created_at", "created_by", "stage", "files", "sha256", "checksum"}
# Keys governance writes into metadata.json as a version moves (see governance.services):
# a client's value would forge a deployment or a retirement, so it is dropped, not stored.
LIFECYCLE_KEYS = {"requested_by", "requested_at", "approved_by", "deployed_at", "deployed_by",
                  "retired_at", "retired_by", "retirement_requested_by",
                  "retirement_approved_by", "reason", "replaced_by", "metrics_comparison",
                  "history"}
MAX_EXAMPLE_ROWS = 100


def is_lower_better(name: str) -> bool:
    """Whether a smaller value of the metric `name` is better.

    A name in LOWER_IS_BETTER, in any case, alone or as the first or last part of a longer
    name: `RMSE`, `val_loss`, `test_mae`, `mean_absolute_error`, `error_rate`, `rmse_holdout`.
    """
    name = name.lower()
    return any(name == known or name.endswith(f"_{known}") or name.startswith(f"{known}_")
               for known in LOWER_IS_BETTER)


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictDictField(serializers.DictField):
    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        return super().to_internal_value(data)


class SignatureColumnSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200)
    dtype = serializers.ChoiceField(choices=DTYPES)


class StringListField(serializers.ListField):
    child = StrictCharField(max_length=1000, allow_blank=False)


class VersionMetadataSerializer(serializers.Serializer):
    author = StrictCharField(max_length=200, required=False, allow_blank=True)
    description = StrictCharField(max_length=10_000, required=False, allow_blank=True)
    algorithm = StrictCharField(max_length=200, required=False, allow_blank=True)
    training_dataset = StrictCharField(max_length=1000, required=False, allow_blank=True)
    features = serializers.ListField(
        child=StrictCharField(max_length=200), required=False, max_length=10_000
    )
    target = StrictCharField(max_length=200, required=False, allow_blank=True)
    hyperparameters = StrictDictField(required=False)
    metrics = StrictDictField(required=False)
    tags = serializers.ListField(child=StrictCharField(max_length=50), required=False, max_length=50)
    changelog = serializers.JSONField(required=False)
    python_version = StrictCharField(max_length=50, required=False, allow_blank=True)
    framework_version = StrictCharField(max_length=50, required=False, allow_blank=True)
    signature = serializers.JSONField(required=False)
    input_example = serializers.JSONField(required=False)
    # The model card's sections (registry/cards.py), kept in their own column.
    model_card = ModelCardField(required=False)

    def __init__(self, *args, model_name: str, version: str, framework: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._identity = {"name": model_name, "version": version, "framework": framework}

    def validate_metrics(self, value):
        for key, number in value.items():
            if not METRIC_NAME_RE.fullmatch(key):
                raise serializers.ValidationError(
                    f"metric name {key!r}: letters, digits and '_', starting with a letter or '_'"
                )
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise serializers.ValidationError(f"{key} must be a number")
            if not is_finite_number(number):
                raise serializers.ValidationError(f"{key} must be finite")
        return value

    def validate_tags(self, value):
        try:
            return normalise_tags(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_features(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("feature names must be unique")
        return value

    def validate_changelog(self, value):
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise serializers.ValidationError("a list of strings (or one string)")
        return value

    def validate_signature(self, value):
        if isinstance(value, dict) and set(value) == {"inputs"}:
            value = value["inputs"]
        if not isinstance(value, list) or not value:
            raise serializers.ValidationError(
                'a non-empty list of {"name": ..., "dtype": ...} (dtype one of '
                + ", ".join(DTYPES)
                + ")"
            )
        columns = SignatureColumnSerializer(data=value, many=True)
        columns.is_valid(raise_exception=True)
        names = [column["name"] for column in columns.validated_data]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("column names must be unique")
        return [dict(column) for column in columns.validated_data]

    def validate_input_example(self, value):
        rows = value if isinstance(value, list) else None
        if (
            not rows
            or len(rows) > MAX_EXAMPLE_ROWS
            or not all(isinstance(row, (list, dict)) for row in rows)
        ):
            raise serializers.ValidationError(
                f"a list of 1-{MAX_EXAMPLE_ROWS} rows, each a list of values or an object"
            )
        return value

    def validate(self, attrs):
        raw = self.initial_data
        errors = {}
        for key in ("name", "model_name", "version"):
            expected = self._identity["version" if key == "version" else "name"]
            if key in raw and raw[key] != expected:
                errors[key] = [f"says {raw[key]!r} but the request is for {expected!r}"]
        if "framework" in raw:
            declared = FRAMEWORK_ALIASES.get(str(raw["framework"]).lower())
            if declared != self._identity["framework"]:
                errors["framework"] = [
                    f"says {raw['framework']!r} but the request's framework is "
                    f"{self._identity['framework']!r}"
                ]
        features = attrs.get("features")
        signature = attrs.get("signature")
        if features and signature and [c["name"] for c in signature] != features:
            errors["signature"] = ["column names must equal `features`, in the same order"]
        if errors:
            raise serializers.ValidationError(errors)
        if signature and not features:
            attrs["features"] = [c["name"] for c in signature]
        elif features and not signature:
            # Without a declared signature, features are taken to be numeric columns.
            attrs["signature"] = [{"name": name, "dtype": "float64"} for name in features]
        attrs["extra_metadata"] = {
            key: value
            for key, value in raw.items()
            if key not in self.fields and key not in IDENTITY_KEYS | GENERATED_KEYS | LIFECYCLE_KEYS
        }
        return attrs


def parse_metadata_text(text) -> dict:
    """Decode the `metadata` form field: it must be a JSON object."""
    if text in (None, ""):
        return {}
    if not isinstance(text, str):
        raise serializers.ValidationError("a JSON object, sent as text")
    try:
        value = json_loads(text)
    except TooDeep as exc:
        raise serializers.ValidationError(str(exc)) from None
    except orjson.JSONDecodeError as exc:
        # JSON has no NaN or Infinity (and PostgreSQL's jsonb refuses them): name them.
        near = text[max(exc.pos - 1, 0):exc.pos + len("-Infinity")]
        constant = next((c for c in ("-Infinity", "NaN", "Infinity") if c in near), None)
        if constant:
            raise serializers.ValidationError(
                f"{constant} is not a JSON value (use null, or a number)") from None
        raise serializers.ValidationError(
            f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise serializers.ValidationError(f"must be a JSON object, not {type(value).__name__}")
    if _holds_nul(value):
        raise serializers.ValidationError("a key or text value holds a NUL character (\\u0000)")
    return value


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def version_document(version, files=None) -> dict:
    """The metadata.json of a version, rendered from its row (and its file rows)."""
    files = list(version.files.all()) if files is None else files
    document = {
        **version.extra_metadata,
        "name": version.model.name,
        "version": version.version,
        "stage": version.stage,
        "description": version.description,
        "created_at": version.created_at.isoformat() if version.created_at else None,
        "created_by": version.created_by.get_username(),
        "author": version.author,
        "framework": version.framework,
        "framework_version": version.framework_version,
        "python_version": version.python_version,
        "algorithm": version.algorithm,
        "task_type": version.model.task_type,
        "training_dataset": version.training_dataset,
        "features": version.features,
        "target": version.target,
        "signature": version.signature,
        "hyperparameters": version.hyperparameters,
        "metrics": version.metrics,
        "tags": version.tags,
        "changelog": version.changelog,
        "files": [
            {"name": f.filename, "role": f.role, "size": f.size, "sha256": f.sha256}
            for f in files
        ],
    }
    if version.input_example is not None:
        document["input_example"] = version.input_example
    if version.evaluation:  # measured by validation (governance.evaluation); absent before
        document["evaluation"] = version.evaluation
    document.update(version.lifecycle)
    return document


def document_bytes(document: dict) -> bytes:
    # Sorted keys: PostgreSQL's jsonb does not keep key order, so the same row must render
    # to the same bytes whether it was just created or read back (reconcile compares them).
    return (
        json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    ).encode()
