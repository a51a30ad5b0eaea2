from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RegistryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry"
    verbose_name = "Model registry"

    def ready(self):
        from registry import store

        post_migrate.connect(
            lambda **_kwargs: store.ensure_layout(), dispatch_uid="registry.ensure_layout",
            weak=False,
        )
