from django.conf import settings
from django.db import models

from registry.models import ModelVersion, RegisteredModel


class ModelAlias(models.Model):
    """A free MLflow alias (`challenger`, `candidate`, ...): a label naming one version.

    The aliases that route traffic (`interop.rules.ROUTING_ALIASES`, e.g. `champion`) are
    never stored: they always name the production version, so they cannot drift from what
    four eyes approved.
    """

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=64)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    set_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "alias"]
        constraints = [
            models.UniqueConstraint(fields=["model", "alias"], name="modelalias_unique_alias"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias}"
