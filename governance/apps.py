from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from governance import receivers  # noqa: F401  (connects the audit receivers)
        from governance.services import reconcile_hook
        from registry import reconcile

        if reconcile_hook not in reconcile.pre_reconcile_hooks:
            reconcile.pre_reconcile_hooks.append(reconcile_hook)
