"""The model registry. `load_model` is the public Python API::

    from registry import load_model
    model = load_model("churn_prediction")                      # the production version
    model = load_model("churn_prediction", version="v1.2.0")    # exact (v-prefix accepted)
    model = load_model("churn_prediction", version="latest",    # highest that passed
                       allow_unapproved=True)                   # validation (warns if not
    model.predict(rows)                                         # in production)
    model.classes_                                              # the estimator's attributes

Anything but the production version runs its pickled code in the calling process, so it
takes `allow_unapproved=True` (see registry.loaders.load_model). It needs Django set up
(`python manage.py shell`, or `django.setup()` in a script); a service outside the project
uses `registry.client.load_model` instead (over the REST API, no database).
"""


def load_model(name: str, version: str | None = None, stage: str | None = None, *,
               allow_unapproved: bool = False):
    """Load a registered version after checking every file's sha256; see registry.loaders."""
    from registry.loaders import load_model as _load_model

    return _load_model(name, version=version, stage=stage, allow_unapproved=allow_unapproved)


__all__ = ["load_model"]
