"""The model registry. `load_model` is the public Python API::

    from registry import load_model
    model = load_model("churn_prediction")                      # highest SemVer
    model = load_model("churn_prediction", version="1.2.0")
    model = load_model("churn_prediction", stage="production")  # what is serving now
    model.predict(rows)

It needs Django set up (`python manage.py shell`, or `django.setup()` in a script).
"""


def load_model(name: str, version: str = "latest", stage: str | None = None):
    """Load a registered version after checking every file's sha256; see registry.loaders."""
    from registry.loaders import load_model as _load_model

    return _load_model(name, version=version, stage=stage)


__all__ = ["load_model"]
