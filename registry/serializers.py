from __future__ import annotations

import datetime
from urllib.parse import quote

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from django.utils.http import RFC3986_SUBDELIMS
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.fields import normalise_tags
from registry.models import FileRole, Framework, ModelVersion, RegisteredModel, TaskType, Team

# Fields a client may try to write but never can, and where each one is really changed.
READ_ONLY_HINTS = {
    "stage": "read-only: a stage changes only through POST .../transitions/ (the approval "
    "workflow)",
    "sha256": "read-only: the registry computes checksums from the bytes it received",
    "checksum": "read-only: the registry computes checksums from the bytes it received",
    "files": "read-only: files are fixed at registration; register a new version instead",
    "path": "read-only: the registry decides where files live",
    "created_by": "read-only: set by the registry to whoever registered the version",
    "created_at": "read-only: set by the registry",
    "version": "read-only: register a new version instead",
    "name": "read-only: a model keeps its name",
    "model": "read-only",
    "metrics": "read-only: metrics are evidence of the registered artifact; register a new "
    "version to change them",
    "framework": "read-only: fixed at registration",
}


_DATETIME = serializers.DateTimeField()
_ZERO = datetime.timedelta(0)


def _datetime(value) -> str | None:
    """A datetime as DRF's DateTimeField writes it (ISO 8601, UTC as Z)."""
    if value is None:
        return None
    if value.utcoffset() == _ZERO and timezone.get_current_timezone_name() == "UTC":
        # What DRF does after converting to the current time zone, which changes nothing here.
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return _DATETIME.to_representation(value)


class RejectUnknownFieldsMixin:
    """Refuse keys that are read-only or unknown, naming each, instead of ignoring them."""

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            errors = {
                key: [READ_ONLY_HINTS.get(key, "unknown field")]
                for key in data.keys()
                if key not in writable
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class TagListField(serializers.ListField):
    child = serializers.CharField(max_length=50)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 50)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return normalise_tags(super().to_internal_value(data))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value):
        return list(value)


# --- registered models ------------------------------------------------------------------------


class ModelOutputSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    team = serializers.CharField(source="team.name", read_only=True)
    tags = TagListField(read_only=True)
    version_count = serializers.IntegerField(read_only=True)
    latest_version = serializers.CharField(read_only=True, allow_null=True)
    production_version = serializers.CharField(read_only=True, allow_null=True)
    risk_tier = serializers.CharField(
        read_only=True, help_text="low, medium or high; empty: not assessed yet.")
    url = serializers.SerializerMethodField()
    versions_url = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "name", "description", "task_type", "owner", "team", "tags", "version_count",
            "latest_version", "production_version", "risk_tier", "risk_reason",
            "business_use", "created_at", "updated_at", "url", "versions_url",
        ]
        read_only_fields = ["risk_tier", "risk_reason", "business_use"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return self.context["request"].build_absolute_uri(obj.get_absolute_url())

    @extend_schema_field(OpenApiTypes.URI)
    def get_versions_url(self, obj) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("api:version-list", kwargs={"name": obj.name})
        )


class ModelCreateInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=64)
    task_type = serializers.ChoiceField(choices=TaskType.choices)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = TagListField(required=False)
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        help_text="Defaults to the caller; only an admin may name someone else.",
    )
    team = serializers.CharField(
        max_length=64, required=False,
        help_text="The team that owns it: one of yours (any, for an admin). Defaults to your "
        "only team (the default team if you belong to none).")


class ModelUpdateInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    task_type = serializers.ChoiceField(choices=TaskType.choices, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = TagListField(required=False)
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
    )
    team = serializers.SlugRelatedField(slug_field="name", queryset=Team.objects.all(),
                                        required=False, help_text="Admins only.")


class ModelRiskInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    risk_tier = serializers.CharField(max_length=10, help_text="low, medium or high.")
    risk_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=10_000,
        help_text="Why this tier (required).")
    business_use = serializers.CharField(
        required=False, allow_blank=True, max_length=10_000,
        help_text="What the business uses the model for (unchanged when left out).")


# --- versions ---------------------------------------------------------------------------------


class FileOutputSerializer(serializers.Serializer):
    filename = serializers.CharField()
    role = serializers.ChoiceField(choices=FileRole.choices)
    position = serializers.IntegerField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    download_url = serializers.URLField()


class VersionOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    tags = TagListField(read_only=True)
    sha256 = serializers.SerializerMethodField(
        help_text="sha256 of the model file (files[0])."
    )
    files = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "model", "version", "stage", "stage_changed_at", "framework", "algorithm",
            "author", "description", "training_dataset", "features", "target", "signature",
            "hyperparameters", "metrics", "tags", "changelog", "python_version",
            "framework_version", "input_example", "extra_metadata", "sha256", "files",
            "created_by", "created_at", "updated_at", "url",
        ]

    # The fields copied from the row as they are (text, numbers, JSON).
    PLAIN_FIELDS = ("version", "stage", "framework", "algorithm", "author", "description",
                    "training_dataset", "features", "target", "signature", "hyperparameters",
                    "metrics", "changelog", "python_version", "framework_version",
                    "input_example", "extra_metadata")

    def to_representation(self, obj):
        # What the declared fields give, built directly: a page of 500 versions spent most of
        # its time in 25 field objects per row (issue 14). The declarations stay for the
        # schema; test_the_fast_representation_matches_the_declared_fields holds them equal.
        files = getattr(obj, "file_list", None)  # selectors.version_listing
        if files is None:
            files = list(obj.files.all())
        url = self._version_url(obj)
        body = {"model": obj.model.name}
        for name in self.PLAIN_FIELDS:
            body[name] = getattr(obj, name)
        body["stage_changed_at"] = _datetime(obj.stage_changed_at)
        body["tags"] = list(obj.tags)
        body["sha256"] = next((f.sha256 for f in files if f.role == FileRole.MODEL), None)
        body["files"] = self._files(files, url)
        body["created_by"] = obj.created_by.username
        body["created_at"] = _datetime(obj.created_at)
        body["updated_at"] = _datetime(obj.updated_at)
        body["url"] = url
        return {name: body[name] for name in self.Meta.fields}

    def get_sha256(self, obj) -> str | None:
        return obj.sha256

    def _version_url(self, obj) -> str:
        # Reversed once per model, not per row: a page of versions is the hot path of the
        # list endpoint. The version is quoted as reverse() quotes it.
        bases = self.__dict__.setdefault("_version_bases", {})
        name = obj.model.name
        base = bases.get(name)
        if base is None:
            base = bases[name] = self.context["request"].build_absolute_uri(
                reverse("api:version-list", kwargs={"name": name}))
        return base + quote(obj.version, safe=RFC3986_SUBDELIMS + "/~:@") + "/"

    @extend_schema_field(FileOutputSerializer(many=True))
    def get_files(self, obj):
        return self._files(obj.files.all(), self._version_url(obj))

    @staticmethod
    def _files(files, url: str) -> list[dict]:
        base = url + "files/"
        return [
            {
                "filename": f.filename,
                "role": f.role,
                "position": f.position,
                "size": f.size,
                "sha256": f.sha256,
                "download_url": base + quote(f.filename),
            }
            for f in files
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return self._version_url(obj)


class VersionCreateInputSerializer(serializers.Serializer):
    """The multipart form of a registration (documented for the OpenAPI schema)."""

    version = serializers.CharField(max_length=64, help_text="Semantic version, e.g. 1.2.0")
    framework = serializers.ChoiceField(choices=Framework.choices)
    metadata = serializers.CharField(
        required=False,
        help_text="A JSON object with the fields of the seeds' metadata.json (author, "
        "description, algorithm, training_dataset, features, target, signature, "
        "hyperparameters, metrics, tags, changelog, python_version, framework_version, "
        "input_example). Text, or a small file part.",
    )
    file = serializers.ListField(
        child=serializers.FileField(),
        help_text="One or more files: the model file first; further `file` parts are kept "
        "as other files of the version.",
    )
    preprocessor = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        help_text="Preprocessing files (joblib/pickle), applied in the order sent.",
    )
    reference = serializers.FileField(
        required=False,
        help_text="A reference sample: one CSV file with a header row naming (at least) "
        "every feature of the signature, ideally the training data or a sample of it. "
        "Validation predicts on its rows and monitoring compares live traffic with it; a "
        "version registered without one can get it later (POST .../reference/).",
    )
    sha256 = serializers.CharField(
        required=False, help_text="The client's sha256 of the model file; refused on mismatch."
    )


class VersionUpdateInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = TagListField(required=False)
