from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    """Evidence for auditors: a prediction's trace, model cards, the model inventory with its
    periodic reviews, and the PDF exports. It reads every other app and writes through their
    services; nothing but demo imports it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "compliance"
    verbose_name = "Compliance"
