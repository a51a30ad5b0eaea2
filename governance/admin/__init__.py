"""The admin as the approvers' desk, one module per subject. Every button calls the same
service as the API, so roles and the four-eyes rule (governance.rules) hold here too; the
service's refusal comes back as an error message, not an error page."""

from governance.admin import (  # noqa: F401  (registers every page)
    approvals,
    audit,
    deployments,
    policies,
    registry_pages,
    rollouts,
    validations,
)
from governance.admin.registry_pages import GovernedRegisteredModelAdmin  # noqa: F401
