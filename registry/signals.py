"""The registry's two signals, for the apps above it (which it may not import).

`validation_needed` is sent inside the transaction that registered a version
(trigger "registration") or added a reference sample to one (trigger "reference"): its rows
are predicted on in the sandbox, and the profile monitoring compares with is built from them.
Governance's receiver (governance/receivers.py) creates the validation run.

`integrity_changed` is sent inside the transaction that flagged a version (a file failed its
sha256 check) or lifted the flag. Monitoring's receiver (monitoring/receivers.py) queues the
sync of the model's integrity alert, which also makes every web process stop (or resume)
serving it.
"""

from django.dispatch import Signal

# kwargs: version (ModelVersion), trigger (str), actor (User)
validation_needed = Signal()
# kwargs: version (ModelVersion)
integrity_changed = Signal()
