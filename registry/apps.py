from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RegistryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry"
    verbose_name = "Model registry"

    def ready(self):
        from django.urls import register_converter

        from registry import roles, store
        from registry.limits import IdConverter

        register_converter(IdConverter, "id")  # `<id:pk>` in the URLconfs
        post_migrate.connect(roles.ensure_groups, dispatch_uid="registry.ensure_groups")
        post_migrate.connect(
            lambda **_kwargs: store.ensure_layout(), dispatch_uid="registry.ensure_layout",
            weak=False,
        )
