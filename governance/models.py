from django.conf import settings
from django.db import models

from registry.models import RiskTier

# --- policies ---------------------------------------------------------------------------------


def default_transitions_requiring_approval() -> list[str]:
    return ["staging->production", "archived->production"]


def default_regression_metrics() -> list[str]:
    """None named: the regression check compares every metric both versions declare.

    (Until migration 0019 the default named six metrics, and a drop in any other, precision
    for one, went unseen.)"""
    return []


def default_lower_is_better() -> list[str]:
    from registry.metadata import LOWER_IS_BETTER

    return list(LOWER_IS_BETTER)


class Policy(models.Model):
    """Validation thresholds and approval rules: the project default (model empty) or one model's.

    A model without its own row follows the project default.
    """

    model = models.OneToOneField(
        "registry.RegisteredModel",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="policy",
        help_text="Empty for the project default.",
    )
    min_metrics = models.JSONField(
        default=dict, blank=True,
        help_text='Declared metrics must be at least these, e.g. {"accuracy": 0.8}.',
    )
    max_metrics = models.JSONField(
        default=dict, blank=True, help_text='Declared metrics must be at most these, e.g. {"rmse": 12}.'
    )
    regression_tolerance = models.FloatField(
        default=0.02,
        help_text="How much worse than production a compared metric may be before the "
        "regression check fails. When the production and candidate values both lie in [0, 1] "
        "(scores: accuracy, precision, recall, F1, AUC) the tolerance is absolute: 0.02 = 2 "
        "points (precision 0.807 to 0.787 passes, to 0.786 fails). Otherwise (a value outside "
        "[0, 1]: an error or loss above 1, a count, a negative R²) it is relative to "
        "production's value: 0.02 = 2 % (RMSE 10.0 to 10.2 passes, to 10.3 fails); when "
        "production's value is 0, absolute. Worse means lower, or higher for a "
        "lower-is-better metric (errors, losses).",
    )
    regression_metrics = models.JSONField(
        default=default_regression_metrics, blank=True,
        help_text='Metrics the regression check compares with production, e.g. ["accuracy", '
        '"recall"]. Empty (the default) means every metric both versions declare. A metric '
        "only one of them declares is listed as not compared.",
    )
    lower_is_better = models.JSONField(
        default=default_lower_is_better, blank=True,
        help_text="More metric names where a smaller value is better. Errors and losses "
        "(mae, rmse, mse, log_loss, *_loss, *_error, ...: registry.metadata.LOWER_IS_BETTER) "
        "are lower-is-better whatever this says; every other metric is higher-is-better.",
    )
    latency_budget_ms = models.FloatField(
        default=200.0, help_text="Largest single-row prediction latency (median, ms)."
    )
    load_timeout_seconds = models.PositiveIntegerField(default=60)
    load_memory_mb = models.PositiveIntegerField(default=2048)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    transitions_requiring_approval = models.JSONField(
        default=default_transitions_requiring_approval, blank=True,
        help_text='Moves that need approvals, as "from->to" (e.g. "staging->production").',
    )
    skipped_check_blocks = models.BooleanField(
        default=False, help_text="Whether a validation check that could not run blocks promotion."
    )
    risk_tier = models.CharField(
        max_length=10, blank=True, default="", choices=RiskTier.choices,
        help_text="A tier's policy (no model): it applies to the models of this risk tier that "
        "have no policy of their own. Empty for a model's policy or the project default.")
    claimed_metrics_tolerance = models.FloatField(
        default=0.02,
        help_text="How far a metric claimed at registration may lie from the one validation "
        "measures on the labelled sample before the claimed_metrics check fails (absolute for "
        "scores in [0, 1], else relative, as for regression_tolerance).")
    claimed_metrics_blocks = models.BooleanField(
        default=True, help_text="Whether a failed claimed_metrics check blocks promotion "
        "(otherwise it is a warning).")
    require_measured_evaluation = models.BooleanField(
        default=False, help_text="Whether promotion needs metrics measured on a labelled "
        "sample (a reference or holdout sample with the target column).")
    required_card_sections = models.JSONField(
        default=list, blank=True,
        help_text='Model card sections a version needs before production, e.g. '
        '["intended_use", "limitations"].')
    review_interval_days = models.PositiveIntegerField(
        null=True, blank=True, default=365,
        help_text="A production version is due for review this many days after its deployment "
        "and after each review. Empty: no periodic review.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(
                models.Value(1), condition=models.Q(model__isnull=True, risk_tier=""),
                name="policy_one_project_default",
            ),
            models.UniqueConstraint(
                fields=["risk_tier"], condition=models.Q(model__isnull=True) & ~models.Q(risk_tier=""),
                name="policy_one_per_risk_tier",
            ),
            models.CheckConstraint(
                condition=models.Q(risk_tier__in=["", "low", "medium", "high"]),
                name="policy_risk_tier_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(model__isnull=True) | models.Q(risk_tier=""),
                name="policy_model_or_tier",
            ),
            models.CheckConstraint(
                condition=models.Q(approvals_required__gte=1), name="policy_needs_an_approval"
            ),
            models.CheckConstraint(
                condition=models.Q(claimed_metrics_tolerance__gte=0),
                name="policy_claimed_tolerance_not_negative",
            ),
        ]

    def __str__(self) -> str:
        if self.model_id:
            return f"policy of {self.model.name}"
        return f"policy of {self.risk_tier}-risk models" if self.risk_tier else "project default policy"

    def requires_approval(self, from_stage: str, to_stage: str) -> bool:
        return f"{from_stage}->{to_stage}" in self.transitions_requiring_approval


class Review(models.Model):
    """A periodic review of a production version, recorded by an approver: it sets the next
    review date (the version's `review_due_at`)."""

    version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT,
                                related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="+")
    comment = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    next_review_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"review of {self.version} by {self.reviewer} on {self.created_at:%Y-%m-%d}"


# --- validation -------------------------------------------------------------------------------


class RunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


class CheckStatus(models.TextChoices):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    # A finding the policy lets through (claimed_metrics when it does not block).
    WARNING = "warning"


class ValidationRun(models.Model):
    """One validation of a version: a result per check, and the verdict under its policy."""

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="validation_runs"
    )
    trigger = models.CharField(max_length=20)  # registration, promotion, manual
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    policy = models.JSONField(default=dict, blank=True)  # the policy it was judged by
    summary = models.CharField(max_length=500, blank=True)
    # What the sandbox said in its own words (the artifact's exception messages, stderr):
    # untrusted text, shown to admins only, as a download.
    sandbox_log = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RunStatus.values), name="validationrun_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"validation #{self.pk} of {self.version}: {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in (RunStatus.PASSED, RunStatus.FAILED)


class ValidationCheck(models.Model):
    run = models.ForeignKey(ValidationRun, on_delete=models.CASCADE, related_name="checks")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=CheckStatus.choices)
    detail = models.TextField(blank=True)
    measured = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="validationcheck_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


# --- approvals --------------------------------------------------------------------------------


class RequestStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    STALE = "stale"


class ApprovalRequest(models.Model):
    """A request to move a version to another stage, waiting for N approvals (four eyes)."""

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="approval_requests"
    )
    from_stage = models.CharField(max_length=20)
    to_stage = models.CharField(max_length=20)
    kind = models.CharField(max_length=20, default="promotion")  # promotion, rollback, ...
    status = models.CharField(
        max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    # The validation that must pass before the move: re-run when the request was made.
    validation_run = models.ForeignKey(
        ValidationRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version"], condition=models.Q(status="pending"),
                name="approvalrequest_one_pending_per_version",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=RequestStatus.values),
                name="approvalrequest_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.version} {self.from_stage} → {self.to_stage}"


class Decision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class Approval(models.Model):
    """One approver's decision on a request, with their comment."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="decisions")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"], name="approval_one_decision_per_approver"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision}s #{self.request_id}"


# --- deployments ------------------------------------------------------------------------------


class DeploymentStatus(models.TextChoices):
    PENDING = "pending"
    MOVING = "moving"
    COMPLETED = "completed"
    FAILED = "failed"


class Deployment(models.Model):
    """A move of a version to another stage, recorded before any folder moves.

    Moving a version into production also archives the version it replaces (`replaced`).
    `plan` lists the folder renames (`{"version_id", "model", "version", "from", "to"}`);
    the executor, and `reconcile` after a crash, carry them out idempotently and then change
    the rows, so the folders and the database agree again.
    """

    model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.PROTECT, related_name="deployments"
    )
    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="deployments"
    )
    from_stage = models.CharField(max_length=20)
    to_stage = models.CharField(max_length=20)
    replaced = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT,
        related_name="replaced_by_deployments",
    )
    kind = models.CharField(max_length=20)  # promotion, rollback, retirement, archive, forced
    status = models.CharField(
        max_length=10, choices=DeploymentStatus.choices, default=DeploymentStatus.PENDING,
        db_index=True,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        help_text="Who set the move off: the approver whose decision completed the request, "
        "or whoever moved the version directly (a forced move, a move needing no approval).",
    )
    request = models.OneToOneField(
        ApprovalRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="deployment"
    )
    reason = models.TextField(blank=True)
    plan = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=DeploymentStatus.values),
                name="deployment_status_valid",
            ),
            # A model's production changes one deployment at a time; the next one waits.
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(status="moving")
                & (models.Q(to_stage="production") | models.Q(from_stage="production")),
                name="deployment_one_production_change_at_a_time",
            ),
        ]

    def __str__(self) -> str:
        return f"deployment #{self.pk}: {self.version} → {self.to_stage} ({self.status})"

    @property
    def touches_production(self) -> bool:
        return "production" in (self.from_stage, self.to_stage)

    def approvals(self) -> list[Approval]:
        """The approving decisions of its request, oldest first (none for a direct move).
        Filtered here, not in SQL, so a prefetched `request__decisions` serves a whole page."""
        if self.request_id is None:
            return []
        return [d for d in self.request.decisions.all() if d.decision == Decision.APPROVE]


# --- rollouts: canary and shadow traffic ------------------------------------------------------


def default_rollout_steps() -> list[int]:
    return [10, 25, 50, 100]


class RolloutMode(models.TextChoices):
    CANARY = "canary"
    SHADOW = "shadow"


class RolloutStatus(models.TextChoices):
    ACTIVE = "active"
    FINISHED = "finished"
    ABORTED = "aborted"


class Rollout(models.Model):
    """A candidate that gets a share of a model's traffic (canary) or a copy of it (shadow).

    A canary answers `percent` % of requests, moving through `steps`; routing is sticky per
    caller-supplied key. A shadow scores every request off the response path and is only
    logged. The candidate becomes production only through a promotion; the rollout then ends.
    """

    model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.PROTECT, related_name="rollouts"
    )
    candidate = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="rollouts"
    )
    mode = models.CharField(max_length=10, choices=RolloutMode.choices)
    steps = models.JSONField(default=default_rollout_steps)
    step = models.PositiveSmallIntegerField(default=0)
    percent = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=RolloutStatus.choices,
                              default=RolloutStatus.ACTIVE)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["model"], condition=models.Q(status="active"),
                                    name="rollout_one_active_per_model"),
            models.CheckConstraint(condition=models.Q(percent__lte=100),
                                   name="rollout_percent_at_most_100"),
        ]

    def __str__(self) -> str:
        share = f"{self.percent}%" if self.mode == RolloutMode.CANARY else "shadow"
        return f"{self.candidate} {share} ({self.status})"


class ServingState(models.Model):
    """One row whose `generation` grows with every change of what serves (a deployment, a
    rollout step). Web processes compare it, cheaply, to notice changes within a second."""

    generation = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"serving generation {self.generation}"


# --- the reference a version is monitored against ----------------------------------------


class ReferenceProfile(models.Model):
    """Per-feature statistics of a version's reference sample, and the distribution of its
    predictions on those rows: what live traffic is compared with.

    `features[name]` is {"kind": "numeric", "edges", "counts", "sample", "n", "missing",
    "mean", "std"} (quantile bins, and a sorted subsample for the Kolmogorov-Smirnov test) or
    {"kind": "categorical", "counts": {category: n}, "n"}. `predictions` has the same shape.
    """

    version = models.OneToOneField("registry.ModelVersion", on_delete=models.PROTECT,
                                   related_name="reference_profile")
    sha256 = models.CharField(max_length=64, help_text="Of the reference file it was built from.")
    n_rows = models.PositiveIntegerField()
    features = models.JSONField(default=dict)
    predictions = models.JSONField(null=True, blank=True)
    predicted_rows = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"reference profile of {self.version} ({self.n_rows} rows)"
