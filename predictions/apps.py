from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "predictions"
    verbose_name = "Predictions"

    def ready(self):
        from predictions import (
            schema,  # noqa: F401  (registers the OpenAPI auth schemes)
            traffic,
        )
        from registry import traffic as registry_traffic

        # Monitoring (governance) reads a version's traffic through the registry's hook.
        if traffic.window not in registry_traffic.sources:
            registry_traffic.sources.append(traffic.window)
