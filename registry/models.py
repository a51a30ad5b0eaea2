from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from registry import store
from registry.fields import TagsField


class TaskType(models.TextChoices):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    CLUSTERING = "clustering"
    RANKING = "ranking"
    FORECASTING = "forecasting"


class Stage(models.TextChoices):
    EXPERIMENT = "experiment"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class Framework(models.TextChoices):
    SKLEARN = "sklearn", "scikit-learn"
    TORCH = "torch", "PyTorch (TorchScript)"
    ONNX = "onnx", "ONNX"


class FileRole(models.TextChoices):
    MODEL = "model"
    PREPROCESSOR = "preprocessor"
    OTHER = "other"
    # Rows the version was trained or validated on (CSV): what monitoring compares with.
    REFERENCE = "reference"
    # What validation measured on the labelled sample, kept in the version folder's
    # evaluation/ (metrics.json, confusion_matrix.png, roc_curve.png, ...).
    EVALUATION = "evaluation"


class RiskTier(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


model_name_validator = RegexValidator(
    store.MODEL_NAME_RE,
    "Lower-case letters, digits, '_' and '-', starting with a letter or digit.",
)


DEFAULT_TEAM = "default"


class Team(models.Model):
    """Who owns a model. Data scientists and approvers act on their teams' models only; a
    user in no team belongs to the default team, so one team needs no set-up."""

    name = models.CharField(max_length=64, unique=True, validators=[model_name_validator])
    description = models.TextField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams",
                                     blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RegisteredModel(models.Model):
    """A named model (e.g. `churn_prediction`) whose versions the registry tracks."""

    name = models.CharField(max_length=64, unique=True, validators=[model_name_validator])
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_models"
    )
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="models")
    # Service accounts that may read this model's metadata and download its files (a service
    # that loads the model itself); their predictions follow their teams, and these grants.
    readers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="readable_models", blank=True,
        help_text="Service accounts allowed to read this model's metadata and files.")
    task_type = models.CharField(max_length=20, choices=TaskType.choices)
    tags = TagsField()
    # The model inventory (SR 11-7): how much harm a wrong answer can do, and what for.
    risk_tier = models.CharField(
        max_length=10, choices=RiskTier.choices, blank=True, default="",
        help_text="Empty: not assessed yet. A tier's policy applies to the models of that tier "
        "that have no policy of their own.")
    risk_reason = models.TextField(blank=True, help_text="Why this tier.")
    business_use = models.TextField(blank=True, help_text="What the business uses it for.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(task_type__in=TaskType.values), name="registeredmodel_task_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(risk_tier__in=["", *RiskTier.values]),
                name="registeredmodel_risk_tier_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("api:model-detail", kwargs={"name": self.name})


class ModelVersion(models.Model):
    """One registered version: its files live in `<stage folder>/<model>/v<version>/`."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64)
    # 1, 2, 3... in registration order within the model: the version number MLflow clients
    # know (interop/); set by version_register under the model's lock.
    number = models.PositiveIntegerField()
    # The parsed version, so that the database orders by SemVer precedence.
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    patch = models.PositiveIntegerField()
    prerelease = models.CharField(max_length=64, blank=True)
    prerelease_key = models.CharField(max_length=512)

    stage = models.CharField(
        max_length=20, choices=Stage.choices, default=Stage.EXPERIMENT, db_index=True
    )
    stage_changed_at = models.DateTimeField(auto_now_add=True)
    framework = models.CharField(max_length=20, choices=Framework.choices)

    # The fields of the seeds' metadata.json.
    algorithm = models.CharField(max_length=200, blank=True)
    author = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    training_dataset = models.CharField(max_length=1000, blank=True)
    features = models.JSONField(default=list, blank=True)
    target = models.CharField(max_length=200, blank=True)
    hyperparameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    tags = TagsField()
    changelog = models.JSONField(default=list, blank=True)
    python_version = models.CharField(max_length=50, blank=True)
    framework_version = models.CharField(max_length=50, blank=True)
    # [{"name": "age", "dtype": "float64"}, ...] in the order the model expects its columns.
    signature = models.JSONField(default=list, blank=True)
    input_example = models.JSONField(null=True, blank=True)
    # Keys of the uploaded metadata that the registry has no column for, kept verbatim.
    extra_metadata = models.JSONField(default=dict, blank=True)
    # The metadata's `model_card` section (intended use, limitations, ...), editable after
    # registration; rendered as HTML, Markdown (model_card.md in the folder) and PDF.
    model_card = models.JSONField(default=dict, blank=True)
    # What validation measured on the version's labelled sample (the files are in
    # evaluation/): {"metrics": {...}, "n_rows": ..., "run": <validation run id>, ...}.
    evaluation = models.JSONField(default=dict, blank=True)
    # When this version, in production, is next due for its periodic review (governance
    # sets it on deployment and on each review; empty: no review due).
    review_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # What governance records in metadata.json about deployment and retirement
    # (deployed_at/by, retired_at/by, reason, replaced_by, metrics_comparison).
    lifecycle = models.JSONField(default=dict, blank=True)
    # The deployment (governance) moving this version's folder right now, if any: reconcile
    # and a reference upload leave the folder alone meanwhile.
    moving_by_deployment = models.PositiveBigIntegerField(null=True, blank=True)
    # Set when a file no longer matches its registered sha256 (or is gone): the version is
    # not served, downloaded or deployed until a check finds it intact again.
    integrity_failed_at = models.DateTimeField(null=True, blank=True)
    # {"file", "expected_sha256", "actual_sha256" (null when missing), "found_by"}
    integrity_problem = models.JSONField(default=dict, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="registered_versions"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model__name", "-major", "-minor", "-patch", "-prerelease_key"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="modelversion_unique_version"),
            models.UniqueConstraint(fields=["model", "number"], name="modelversion_unique_number"),
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(stage="production"),
                name="modelversion_one_production_per_model",
            ),
            models.CheckConstraint(
                condition=Q(stage__in=Stage.values), name="modelversion_stage_valid"
            ),
            models.CheckConstraint(
                condition=Q(framework__in=Framework.values), name="modelversion_framework_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["model", "major", "minor", "patch", "prerelease_key"],
                name="modelversion_semver_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} {self.version}"

    def get_absolute_url(self) -> str:
        return reverse(
            "api:version-detail", kwargs={"name": self.model.name, "version": self.version}
        )

    @property
    def model_file(self):
        """The primary artifact (role `model`); files are prefetched in position order."""
        return next((f for f in self.files.all() if f.role == FileRole.MODEL), None)

    @property
    def sha256(self) -> str | None:
        primary = self.model_file
        return primary.sha256 if primary else None

    @property
    def columns(self) -> list[dict]:
        """The input columns in order: the signature, or the features taken as numbers."""
        return self.signature or [{"name": name, "dtype": "float64"} for name in self.features]

    @property
    def reference_file(self):
        return next((f for f in self.files.all() if f.role == FileRole.REFERENCE), None)


class ArtifactFile(models.Model):
    """A file of a version, in its version folder; `position` orders preprocessors."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="files")
    role = models.CharField(max_length=20, choices=FileRole.choices)
    filename = models.CharField(max_length=128)
    position = models.PositiveSmallIntegerField()
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "filename"], name="artifactfile_unique_name"),
            models.UniqueConstraint(
                fields=["version", "position"], name="artifactfile_unique_position"
            ),
            models.UniqueConstraint(
                fields=["version"],
                condition=Q(role="model"),
                name="artifactfile_one_model_file",
            ),
            models.UniqueConstraint(
                fields=["version"],
                condition=Q(role="reference"),
                name="artifactfile_one_reference_file",
            ),
            models.CheckConstraint(
                condition=Q(role__in=FileRole.values), name="artifactfile_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.filename

    @property
    def relative_path(self) -> str:
        """Path inside the version folder (files are flat, so this is the file name)."""
        return self.filename
