"""The measured evaluation of a version as the admin shows it: metrics and images inline."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import reverse

from registry.models import FileRole

# The order a reader expects: what the errors are, then how the scores rank, then why.
PLOT_ORDER = ["confusion_matrix.png", "roc_curve.png", "pr_curve.png", "calibration_curve.png",
              "feature_importance.png", "predicted_vs_actual.png"]
PLOT_TITLES = {"confusion_matrix.png": "Confusion matrix", "roc_curve.png": "ROC curve",
               "pr_curve.png": "Precision-recall curve",
               "calibration_curve.png": "Calibration curve",
               "feature_importance.png": "Permutation feature importance",
               "predicted_vs_actual.png": "Predicted vs actual"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _url(version, filename: str) -> str:
    # The authenticated download view: the same access rules as every file of the version.
    return reverse("api:version-file", kwargs={"name": version.model.name,
                                               "version": version.version,
                                               "filename": filename})


def evaluation_context(version) -> dict:
    """Metrics, plots (from evaluation/) and uploaded images of one version."""
    if version is None:
        return {"version": None}
    files = list(version.files.all())
    plots = {f.filename.split("/", 1)[-1]: f for f in files if f.role == FileRole.EVALUATION
             and f.filename.lower().endswith(IMAGE_SUFFIXES)}
    ordered = sorted(plots, key=lambda n: (PLOT_ORDER.index(n) if n in PLOT_ORDER
                                           else len(PLOT_ORDER), n))
    evaluation = version.evaluation or {}
    metrics = evaluation.get("metrics") or {}
    claimed = version.metrics or {}
    return {
        "version": version,
        "evaluation": evaluation,
        "metrics": [{"name": name, "measured": value, "claimed": claimed.get(name)}
                    for name, value in metrics.items()],
        "images": [{"title": PLOT_TITLES.get(name, name), "url": _url(version, plots[name].filename),
                    "sha256": plots[name].sha256, "name": plots[name].filename}
                   for name in ordered],
        "uploaded": [{"title": f.filename, "url": _url(version, f.filename), "sha256": f.sha256,
                      "name": f.filename}
                     for f in files if f.role != FileRole.EVALUATION
                     and f.filename.lower().endswith(IMAGE_SUFFIXES)],
    }


def evaluation_html(version) -> str:
    return render_to_string("admin/governance/evaluation_panel.html",
                            {"panel": evaluation_context(version)})
