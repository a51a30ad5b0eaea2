from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "predictions"
    verbose_name = "Predictions"

    def ready(self):
        from predictions import schema  # noqa: F401  (registers the OpenAPI auth schemes)
