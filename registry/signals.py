"""The registry's one signal, for the app above it that validates versions.

`validation_needed` is sent inside the transaction that registered a version
(trigger "registration") or added a reference sample to one (trigger "reference"): its rows
are predicted on in the sandbox, and the profile monitoring compares with is built from them.
Governance's receiver (governance/receivers.py) creates the validation run.
"""

from django.dispatch import Signal

# kwargs: version (ModelVersion), trigger (str), actor (User)
validation_needed = Signal()
