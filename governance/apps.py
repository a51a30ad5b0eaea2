from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"
    verbose_name = "Governance"

    def ready(self):

        from governance import login, receivers  # noqa: F401  (connect the receivers)
        from governance.services import deployment_moving, reconcile_hook
        from registry import reconcile

        if reconcile_hook not in reconcile.pre_reconcile_hooks:
            reconcile.pre_reconcile_hooks.append(reconcile_hook)
        if deployment_moving not in reconcile.in_flight_hooks:
            reconcile.in_flight_hooks.append(deployment_moving)
