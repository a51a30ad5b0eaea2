"""Every governance write, one module per family: validations, transitions, approvals,
deployments, rollouts, policies, integrity, recovery, imports. Each public function is one durable
transaction that writes its audit events; who may do what is in governance.rules, and a
refusal is itself audited."""

from governance.services.approvals import (  # noqa: F401
    approval_decide,
)
from governance.services.common import (  # noqa: F401
    TransitionOutcome,
    lock_for_change,
    serving_changed,
    system_user,
)
from governance.services.deployments import (  # noqa: F401
    DeploymentBlocked,
    deployment_execute,
    deployment_recover,
    reconcile,
)
from governance.services.evaluations import (  # noqa: F401
    evaluation_record,
)
from governance.services.imports import (  # noqa: F401
    ImportResult,
    directory_import,
    import_landing,
    import_refusal,
    version_import,
)
from governance.services.integrity import (  # noqa: F401
    integrity_sweep,
)
from governance.services.policies import (  # noqa: F401
    policy_save,
)
from governance.services.recovery import (  # noqa: F401
    interrupted_recover,
)
from governance.services.rollouts import (  # noqa: F401
    rollout_abort,
    rollout_advance,
    rollout_start,
)
from governance.services.transitions import (  # noqa: F401
    rollback_request,
    rollback_target,
    transition_request,
    version_force_stage,
)
from governance.services.validations import (  # noqa: F401
    reference_profile_build,
    reference_profile_save,
    validation_execute,
    validation_recover,
    validation_request,
    validation_request_now,
    validation_start,
)
