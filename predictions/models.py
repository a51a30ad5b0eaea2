from django.conf import settings
from django.db import models

from predictions.fields import FastJSONField, PackedRowsField


class ApiToken(models.Model):
    """A long-lived token for a service account. Only its sha256 is stored.

    The token is `mgt_<prefix>_<secret>`; it is shown once, when it is made. The prefix finds
    the row; the digest of the whole token must match.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What uses it, e.g. 'loans-service'.")
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.user}, mgt_{self.prefix}_…)"


class RateLimit(models.Model):
    """Predictions per hour for one user or one group (the larger limit wins for a user with
    several groups; a user's own limit wins over their groups')."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.CASCADE, related_name="rate_limit")
    group = models.OneToOneField("auth.Group", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="rate_limit")
    requests_per_hour = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False, group__isnull=True)
                           | models.Q(user__isnull=True, group__isnull=False)),
                name="ratelimit_user_or_group",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user or self.group}: {self.requests_per_hour}/hour"


class Route(models.TextChoices):
    PRODUCTION = "production"
    CANARY = "canary"
    SHADOW = "shadow"
    DIRECT = "direct"  # a caller asked for this version by number


class PredictionLog(models.Model):
    """One answered request, as one version answered it (a shadow's answer is its own row).

    `inputs` and `outputs` hold the rows kept by the sampling rate, and `row_indices` says
    which rows of the request they were, so feedback can be matched to them.
    """

    request_id = models.CharField(max_length=64, db_index=True)
    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT,
                              related_name="prediction_logs")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT,
                                related_name="prediction_logs")
    route = models.CharField(max_length=12, choices=Route.choices)
    caller = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                               related_name="+")
    caller_name = models.CharField(max_length=150)
    protocol = models.CharField(max_length=10, default="rest")
    created_at = models.DateTimeField(db_index=True)
    n_rows = models.PositiveIntegerField()
    row_indices = FastJSONField(default=list)
    inputs = PackedRowsField(default=list)
    outputs = FastJSONField(default=list)
    probabilities = FastJSONField(null=True, blank=True)
    latency_ms = models.FloatField()
    routing_key = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["model", "created_at"], name="predlog_model_time_idx"),
            models.Index(fields=["version", "created_at"], name="predlog_version_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.version} ({self.route}, {self.n_rows} rows)"


class PredictionLogBlock(models.Model):
    """Many single-row requests of one version, route and protocol, as one row: what the log
    writer buffered in one flush (PREDICTION_LOG_BLOCKS). Readers see each request as if it
    were a PredictionLog (predictions.blocks, predictions.selectors).

    `inputs` holds the kept rows packed (predictions.fields), `outputs` and `probabilities`
    their answers, `requests` the per-request columns packed (predictions.blocks.META).
    Request ids are time-ordered (predictions.logs.new_request_id), so a request is found by
    the `created_at` index around its id's time, then in `request_ids`.
    """

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT,
                              related_name="+")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT,
                                related_name="+")
    route = models.CharField(max_length=12, choices=Route.choices)
    protocol = models.CharField(max_length=10, default="rest")
    # The first request's time: the day a partition would hold it in.
    created_at = models.DateTimeField(db_index=True)
    last_at = models.DateTimeField()  # the newest request's time (retention)
    n_requests = models.PositiveIntegerField()
    n_rows = models.PositiveIntegerField()  # answered rows (one per request)
    request_ids = models.TextField()  # "id id id", in the order of `requests`
    requests = models.BinaryField()
    callers = FastJSONField(default=dict)  # {caller id: name} of the block's callers
    routing_keys = FastJSONField(default=list)  # one per request, or [] when all are ""
    inputs = models.BinaryField()
    outputs = FastJSONField(default=list)
    probabilities = FastJSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "prediction log block"
        indexes = [
            models.Index(fields=["version", "created_at"], name="predblock_version_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.route}, {self.n_requests} requests from {self.created_at})"


class Feedback(models.Model):
    """The true outcome of one row of an answered request (for live accuracy)."""

    request_id = models.CharField(max_length=64, db_index=True)
    row_index = models.PositiveIntegerField()
    actual = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["request_id", "row_index"]
        verbose_name = "outcome"
        verbose_name_plural = "outcomes (feedback)"
        constraints = [
            models.UniqueConstraint(fields=["request_id", "row_index"],
                                    name="feedback_one_per_row"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}[{self.row_index}] = {self.actual}"


class ErrorKind(models.TextChoices):
    REJECTED = "rejected"  # the caller's rows did not fit the signature (4xx)
    FAILED = "failed"  # the model could not answer (5xx)


class PredictionError(models.Model):
    """A routed request that got no predictions: refused for its input, or failed in the
    model. Monitoring counts them (error rate); operators read them here."""

    request_id = models.CharField(max_length=64, db_index=True)
    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT,
                              related_name="prediction_errors")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT,
                                related_name="prediction_errors")
    kind = models.CharField(max_length=10, choices=ErrorKind.choices)
    status_code = models.PositiveSmallIntegerField()
    message = models.CharField(max_length=500)
    caller_name = models.CharField(max_length=150, blank=True)
    protocol = models.CharField(max_length=10, default="rest")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["version", "created_at"],
                                name="prederr_version_time_idx")]

    def __str__(self) -> str:
        return f"{self.request_id} {self.version}: {self.kind} ({self.status_code})"
