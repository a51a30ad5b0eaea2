"""The model inventory: every model a person may see, with its risk tier (and why), business
use, owner and team, production version, last validation, last review, next review and open
alerts. One read (a fixed number of queries, whatever the number of models), one structure
(rows of plain values): the API's JSON as it is, the CSV's rows, the admin page's and the
PDF's context.
"""

from __future__ import annotations

import csv
import io

from django.db.models import Count
from django.utils import timezone

from core.errors import ApplicationError
from core.spreadsheet import csv_cell
from governance.models import Review, RunStatus, ValidationRun
from monitoring.models import ACTIVE_ALERT, Alert
from registry import access
from registry.models import ModelVersion, RiskTier, Stage

TIERS = ["", *RiskTier.values]  # "" is a model not assessed yet
CSV_COLUMNS = ["model", "risk_tier", "risk_reason", "business_use", "owner", "team",
               "production_version", "in_production_since", "last_validation_status",
               "last_validation_at", "last_validation_version", "last_review_at",
               "last_reviewed_by", "last_review_version", "next_review_at", "overdue",
               "open_alerts"]
OVERDUE_CHOICES = {"true": True, "1": True, "yes": True, "false": False, "0": False,
                   "no": False}


def parse_filters(params) -> dict:
    """`tier` and `overdue` from a query string; a bad value is a 400 naming it."""
    filters = {}
    tier = params.get("tier")
    if tier is not None:
        if tier not in RiskTier.values and tier != "none":
            raise ApplicationError(f"one of {', '.join(RiskTier.values)} or none",
                                   field="tier")
        filters["tier"] = "" if tier == "none" else tier
    overdue = params.get("overdue")
    if overdue is not None:
        if overdue.lower() not in OVERDUE_CHOICES:
            raise ApplicationError("true or false", field="overdue")
        filters["overdue"] = OVERDUE_CHOICES[overdue.lower()]
    return filters


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def model_inventory(*, user, tier: str | None = None, overdue: bool | None = None,
                    now=None) -> list[dict]:
    """One row per model `user` may see (registry.access), by name."""
    now = now or timezone.now()
    models = access.visible_models(user).select_related("owner", "team").order_by("name")
    if tier is not None:
        models = models.filter(risk_tier=tier)
    models = list(models)
    ids = [m.pk for m in models]
    production = {v.model_id: v for v in ModelVersion.objects.filter(
        model_id__in=ids, stage=Stage.PRODUCTION)}
    # The production version's latest finished validation; a model with none in production
    # shows its latest finished validation of any version.
    validations = {}
    for run in (ValidationRun.objects.filter(version__model_id__in=ids,
                                             status__in=[RunStatus.PASSED, RunStatus.FAILED])
                .select_related("version").order_by("created_at", "id")):
        model_id = run.version.model_id
        current = production.get(model_id)
        if current is None or run.version_id == current.pk:
            validations[model_id] = run
    reviews = {}
    for review in (Review.objects.filter(version__model_id__in=ids)
                   .select_related("version", "reviewer").order_by("created_at", "id")):
        reviews[review.version.model_id] = review
    alerts = dict(Alert.objects.filter(ACTIVE_ALERT, model_id__in=ids).values("model_id")
                  .annotate(n=Count("id")).values_list("model_id", "n"))
    rows = []
    for model in models:
        version = production.get(model.pk)
        run = validations.get(model.pk)
        review = reviews.get(model.pk)
        due = version.review_due_at if version else None
        late = bool(due and due <= now)
        if overdue is not None and late != overdue:
            continue
        rows.append({
            "model": model.name,
            "risk_tier": model.risk_tier,  # "" until assessed, as the model's own field
            "risk_reason": model.risk_reason,
            "business_use": model.business_use,
            "owner": model.owner.get_username(),
            "team": model.team.name,
            "production_version": version.version if version else None,
            "in_production_since": _iso(version.stage_changed_at) if version else None,
            "last_validation": {"version": run.version.version, "status": run.status,
                                "at": _iso(run.finished_at or run.created_at)} if run else None,
            "last_review": {"version": review.version.version,
                            "by": review.reviewer.get_username(),
                            "at": _iso(review.created_at), "comment": review.comment}
            if review else None,
            "next_review_at": _iso(due),
            "overdue": late,
            "days_overdue": round((now - due).total_seconds() / 86_400, 1) if late else None,
            "open_alerts": alerts.get(model.pk, 0),
        })
    return rows


def inventory_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        validation, review = row["last_validation"] or {}, row["last_review"] or {}
        writer.writerow([csv_cell(cell) for cell in [
            row["model"], row["risk_tier"] or "", row["risk_reason"], row["business_use"],
            row["owner"], row["team"], row["production_version"] or "",
            row["in_production_since"] or "", validation.get("status", ""),
            validation.get("at", ""), validation.get("version", ""), review.get("at", ""),
            review.get("by", ""), review.get("version", ""), row["next_review_at"] or "",
            "yes" if row["overdue"] else "no", row["open_alerts"],
        ]])
    return buffer.getvalue()


def inventory_context(rows: list[dict], *, filters: dict, generated_at) -> dict:
    """What compliance/inventory_table.html needs (the admin page and the PDF)."""
    return {"rows": rows, "filters": filters, "generated_at": generated_at,
            "overdue_count": sum(1 for row in rows if row["overdue"]),
            "tiers": RiskTier.values}


def inventory_pdf(rows: list[dict], *, filters: dict, viewer: str):
    from django.template.loader import render_to_string

    from core import pdf

    generated_at = timezone.now()
    html = render_to_string("compliance/inventory_document.html", {
        **inventory_context(rows, filters=filters, generated_at=generated_at),
        "viewer": viewer})
    return pdf.pdf_response(html, title="Model inventory",
                            filename=f"model-inventory-{generated_at:%Y%m%d-%H%M}.pdf",
                            generated_at=generated_at)
