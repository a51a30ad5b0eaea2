"""Reading a team's existing model directory into an import plan (pure code: files in,
a plan out; nothing is written and no row is read).

`plan_directory(root)` recognises the layouts of the source documents — stage folders
(`production/ staging/ archived/ archive/ experiments/`, with a model's folder, a
`<model>_v<version>` folder or the stage folder itself holding one model's files),
`trained/` folders (`<name>_v<version>/model.joblib` or `{name}_{version}_{date}.pkl`, with
`preprocessing/`, `evaluation/` and `metadata/`), and a plain folder of model files — and
returns an `ImportPlan`: each version with its normalised version, stage, files and their
roles, the metadata kept, and everything skipped with the reason. The writer is
`governance.services.imports`; `manage.py import_models` prints the plan and calls it.
"""

from registry.importing.plan import (  # noqa: F401
    ImportPlan,
    PlannedFile,
    PlannedVersion,
    Skipped,
    normalise_version,
    plan_directory,
)
