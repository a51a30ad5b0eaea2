"""Governance's receivers of the registry's signals (registry/signals.py).

A version that needs validating gets a validation run: the registry sends `registry.signals.validation_needed` inside the transaction that registered
a version or added its reference sample (it may not import governance); the run is created in
that transaction and its task starts on commit.
"""

from django.dispatch import receiver

from registry.signals import passed_validation, validation_needed


@receiver(validation_needed, dispatch_uid="governance.validation_needed")
def request_validation(sender, *, version, trigger, actor, **_kwargs):
    from governance.services import validation_request

    validation_request(version=version, trigger=trigger, actor=actor)


@receiver(passed_validation, dispatch_uid="governance.passed_validation")
def answer_passed_validation(sender, *, versions, **_kwargs):
    from governance.selectors import versions_passed_validation

    return versions_passed_validation(versions)
