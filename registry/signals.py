"""The registry's two signals, for the apps above it (which it may not import).

`validation_needed` is sent inside the transaction that registered a version
(trigger "registration") or added a reference sample to one (trigger "reference"): its rows
are predicted on in the sandbox, and the profile monitoring compares with is built from them.
Governance's receiver (governance/receivers.py) creates the validation run.

`integrity_changed` is sent inside the transaction that flagged a version (a file failed its
sha256 check) or lifted the flag. Monitoring's receiver (monitoring/receivers.py) queues the
sync of the model's integrity alert, which also makes every web process stop (or resume)
serving it.

`passed_validation` is a question, not news: `load_model(name, version="latest")` means the
highest version that passed validation, which governance judges. The registry sends it with a
QuerySet of versions; governance's receiver returns the ones whose latest finished validation
run passed (governance.selectors.versions_passed_validation). With no receiver connected,
nothing has passed.
"""

from django.dispatch import Signal

# kwargs: version (ModelVersion), trigger (str), actor (User)
validation_needed = Signal()
# kwargs: version (ModelVersion)
integrity_changed = Signal()
# kwargs: versions (QuerySet[ModelVersion]); a receiver returns the subset that passed
passed_validation = Signal()
