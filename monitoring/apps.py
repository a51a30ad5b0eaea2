from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        from django.db.models.signals import post_migrate

        from monitoring import receivers  # noqa: F401  (integrity flags open alerts)
        from monitoring.services import ensure_default_rules

        post_migrate.connect(ensure_default_rules, sender=self,
                             dispatch_uid="monitoring.ensure_default_rules")
