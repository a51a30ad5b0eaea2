"""Governance's one receiver: a version that needs validating gets a validation run.

The registry sends `registry.signals.validation_needed` inside the transaction that registered
a version or added its reference sample (it may not import governance); the run is created in
that transaction and its task starts on commit.
"""

from django.dispatch import receiver

from registry.signals import validation_needed


@receiver(validation_needed, dispatch_uid="governance.validation_needed")
def request_validation(sender, *, version, trigger, actor, **_kwargs):
    from governance.services import validation_request

    validation_request(version=version, trigger=trigger, actor=actor)
