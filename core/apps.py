from django.apps import AppConfig


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Audit trail"

    def ready(self):
        from django.db.models.signals import post_migrate
        from django.urls import register_converter

        from core import receivers, roles  # noqa: F401  (receivers: who gained rights)
        from core.limits import IdConverter

        register_converter(IdConverter, "id")  # `<id:pk>` in the URLconfs
        from core.schedules import setup_periodic_tasks

        post_migrate.connect(roles.ensure_groups, dispatch_uid="core.ensure_groups")
        # Once per migrate (this app's signal), when every app's tables exist.
        post_migrate.connect(setup_periodic_tasks, sender=self,
                             dispatch_uid="core.setup_periodic_tasks")
