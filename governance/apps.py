from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from django.db.models.signals import post_migrate

        from governance import login, receivers  # noqa: F401  (connect the receivers)
        from governance.services import deployment_moving, ensure_default_rules, reconcile_hook
        from registry import reconcile

        post_migrate.connect(ensure_default_rules, sender=self,
                             dispatch_uid="governance.ensure_default_rules")

        if reconcile_hook not in reconcile.pre_reconcile_hooks:
            reconcile.pre_reconcile_hooks.append(reconcile_hook)
        if deployment_moving not in reconcile.in_flight_hooks:
            reconcile.in_flight_hooks.append(deployment_moving)
