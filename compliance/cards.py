"""A version's model card as a document: its sections (registry/cards.py) with everything the
app knows around them — owners and team, risk tier, the metrics claimed at registration and
those validation measured (with the evaluation images), approvals, deployments and the
monitoring summary.

One read, one structure (a dict that is the API's JSON and the HTML, Markdown and PDF
renderings' context), as the trace (compliance/trace.py). The images are inlined as `data:`
URIs for HTML and PDF only; the JSON names them with their sha256.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from core import roles
from governance import policies
from governance.models import ApprovalRequest, Deployment
from monitoring.models import ACTIVE_ALERT, Alert, MonitoringRun
from registry import cards, loaders, selectors
from registry.models import FileRole, ModelVersion

OUTPUTS = ("json", "html", "md", "pdf")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif"}
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # a larger "image" is listed, not inlined


def card_version(model_name: str, version: str, *, user) -> ModelVersion:
    """The version whose card `user` may read: people who read models (registry.access);
    service accounts and outsiders get the 404 of a model that does not exist."""
    if not roles.has_role(user, roles.READ_ROLES):
        from registry import access

        raise access.not_found(model_name)
    return selectors.version_get(model_name, version, user=user)


def may_edit(user, version: ModelVersion) -> bool:
    """Whether the card's edit form and PATCH are for `user` (the service decides again)."""
    from registry import access
    from registry.services import CARD_EDIT_ROLES

    return roles.has_role(user, CARD_EDIT_ROLES) and access.may_act(user, version.model)


def _person(user) -> dict | None:
    if user is None:
        return None
    return {"username": user.get_username(), "name": user.get_full_name()}


def _admin_url(obj) -> str | None:
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change",
                       args=[obj.pk])
    except NoReverseMatch:
        return None


def _images(version: ModelVersion) -> list[dict]:
    """The version's images (evaluation results and uploaded ones), each checked against its
    sha256 before it is shown."""
    from core.pdf import data_uri

    found = []
    for artifact in version.files.all():
        kind = IMAGE_TYPES.get(PurePosixPath(artifact.filename).suffix.lower())
        if kind is None or artifact.role not in (FileRole.EVALUATION, FileRole.OTHER):
            continue
        image = {"filename": artifact.relative_path, "role": artifact.role,
                 "sha256": artifact.sha256, "note": "", "data_uri": None}
        if artifact.size > MAX_IMAGE_BYTES:
            image["note"] = "too large to show inline"
        else:
            try:
                image["data_uri"] = data_uri(loaders.read_verified(version, artifact), kind)
            except (loaders.ArtifactError, OSError):
                image["note"] = "not shown: it failed its sha256 check or is missing"
        found.append(image)
    return found


def _approvals(version: ModelVersion) -> list[dict]:
    requests = (ApprovalRequest.objects.filter(version=version)
                .select_related("requested_by").prefetch_related("decisions__approver")
                .order_by("created_at", "id"))
    return [{"id": r.pk, "admin_url": _admin_url(r), "from_stage": r.from_stage,
             "to_stage": r.to_stage, "status": r.status, "requested_by": _person(r.requested_by),
             "requested_at": r.created_at, "reason": r.reason,
             "decisions": [{"approver": _person(d.approver), "decision": d.decision,
                            "comment": d.comment, "at": d.created_at}
                           for d in r.decisions.all()]}
            for r in requests]


def _deployments(version: ModelVersion) -> list[dict]:
    rows = (Deployment.objects.filter(version=version)
            .select_related("requested_by", "deployed_by").order_by("created_at", "id"))
    return [{"id": d.pk, "admin_url": _admin_url(d), "kind": d.kind,
             "from_stage": d.from_stage, "to_stage": d.to_stage, "status": d.status,
             "requested_by": _person(d.requested_by), "deployed_by": _person(d.deployed_by),
             "completed_at": d.completed_at, "reason": d.reason} for d in rows]


def _monitoring(version: ModelVersion) -> dict:
    run = MonitoringRun.objects.filter(version=version).order_by("-created_at", "-id").first()
    alerts = (Alert.objects.filter(ACTIVE_ALERT, model_id=version.model_id)
              .order_by("first_seen", "id"))
    return {
        "last_run": None if run is None else {
            "id": run.pk, "at": run.created_at, "route": run.route, "status": run.status,
            "summary": run.summary, "requests": run.requests},
        "open_alerts": [{"id": a.pk, "title": a.title, "severity": a.severity,
                         "status": a.status, "first_seen": a.first_seen} for a in alerts],
    }


def _metrics(claimed: dict, evaluation: dict) -> dict:
    measured = evaluation.get("metrics") or {}
    return {"rows": [{"name": name, "claimed": claimed.get(name),
                      "measured": measured.get(name)}
                     for name in sorted(set(claimed) | set(measured))],
            "measured_on": {k: v for k, v in evaluation.items() if k != "metrics"}}


def card_document(version: ModelVersion) -> dict:
    """The whole card of a version the caller may see (card_version)."""
    model = version.model
    card = version.model_card or {}
    policy = policies.effective_policy(model)
    required = [key for key in cards.SECTIONS if key in (policy.required_card_sections or [])]
    evaluation = version.evaluation or {}
    return {
        "model": model.name, "version": version.version, "stage": version.stage,
        "task_type": model.task_type, "framework": version.framework,
        "algorithm": version.algorithm, "description": version.description,
        "generated_at": timezone.now(),
        "admin_url": _admin_url(version),
        "api_url": reverse("api:version-card", kwargs={"name": model.name,
                                                       "version": version.version}),
        "sections": [{"key": key, "title": cards.TITLES[key], "text": card.get(key, "")}
                     for key in cards.SECTIONS],
        "required_sections": required,
        "missing_required_sections": cards.missing_sections(card, required),
        "owners": {"owner": _person(model.owner), "team": model.team.name,
                   "registered_by": _person(version.created_by), "author": version.author,
                   "registered_at": version.created_at},
        "risk": {"tier": model.risk_tier, "reason": model.risk_reason,
                 "business_use": model.business_use},
        "training_dataset": version.training_dataset,
        "metrics": _metrics(version.metrics or {}, evaluation),
        "images": _images(version),
        "approvals": _approvals(version),
        "deployments": _deployments(version),
        "monitoring": _monitoring(version),
    }


def card_json(document: dict) -> dict:
    """The API's JSON: the images by name and sha256, not inlined."""
    return {**document, "images": [{k: v for k, v in image.items() if k != "data_uri"}
                                   for image in document["images"]]}


# --- renderings -----------------------------------------------------------------------------


def card_html(document: dict, *, viewer: str = "") -> str:
    return render_to_string("compliance/card_document.html",
                            {"card": document, "viewer": viewer})


def card_pdf(document: dict, *, viewer: str = ""):
    from core import pdf

    return pdf.pdf_response(card_html(document, viewer=viewer), title=_title(document),
                            filename=f"model-card-{document['model']}-{document['version']}.pdf",
                            generated_at=document["generated_at"])


def _title(document: dict) -> str:
    return f"Model card: {document['model']} {document['version']}"


def _cell(value) -> str:
    text = "—" if value in (None, "") else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _when(value) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}" if value else "—"


def _who(person) -> str:
    return person["username"] if person else "—"


def card_markdown(document: dict) -> str:
    """The card document as Markdown (the API's `?output=md`)."""
    d = document
    lines = [f"# {_title(d)}", "",
             f"Generated {_when(d['generated_at'])}. Stage: {d['stage']}. "
             f"{d['task_type']}, {d['framework']}"
             + (f", {d['algorithm']}" if d["algorithm"] else "") + ".", ""]
    owners = d["owners"]
    lines += ["## Owners", "", f"- Owner: {_who(owners['owner'])}",
              f"- Team: {owners['team']}",
              f"- Registered by: {_who(owners['registered_by'])} on "
              f"{_when(owners['registered_at'])}", ""]
    if d["risk"]["tier"]:
        lines += [f"Risk tier: **{d['risk']['tier']}**. {d['risk']['reason']}", ""]
    if d["missing_required_sections"]:
        lines += ["**Sections the policy requires before production and the card lacks:** "
                  + ", ".join(d["missing_required_sections"]), ""]
    for section in d["sections"]:
        lines += [f"## {section['title']}", "", section["text"] or "_Not stated._", ""]
        if section["key"] == "evaluation_data":
            lines += _metrics_markdown(d)
    lines += ["## Approvals", ""]
    if not d["approvals"]:
        lines += ["None.", ""]
    for request in d["approvals"]:
        lines.append(f"- Request #{request['id']} {request['from_stage']} → "
                     f"{request['to_stage']} by {_who(request['requested_by'])} on "
                     f"{_when(request['requested_at'])}: {request['status']}")
        lines += [f"  - {decision['decision']} by {_who(decision['approver'])} on "
                  f"{_when(decision['at'])}: {_cell(decision['comment'])}"
                  for decision in request["decisions"]]
    lines += ["", "## Deployments", ""]
    if d["deployments"]:
        lines += ["| # | move | status | requested by | deployed by | completed |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {x['id']} | {x['from_stage']} → {x['to_stage']} ({x['kind']}) | "
                  f"{x['status']} | {_who(x['requested_by'])} | {_who(x['deployed_by'])} | "
                  f"{_when(x['completed_at'])} |" for x in d["deployments"]]
    else:
        lines.append("None.")
    monitoring = d["monitoring"]
    lines += ["", "## Monitoring", ""]
    run = monitoring["last_run"]
    lines.append(f"Last run: {_when(run['at'])}, {run['status']}: {_cell(run['summary'])}"
                 if run else "Last run: none.")
    lines.append(f"Open alerts: {len(monitoring['open_alerts'])}")
    lines += [f"- {a['severity']}: {_cell(a['title'])} (since {_when(a['first_seen'])})"
              for a in monitoring["open_alerts"]]
    return "\n".join(lines) + "\n"


def _metrics_markdown(d: dict) -> list[str]:
    rows = d["metrics"]["rows"]
    lines = ["### Metrics", ""]
    if not rows:
        return [*lines, "No metrics claimed or measured.", ""]
    lines += ["| metric | claimed at registration | measured by validation |", "|---|---|---|"]
    lines += [f"| {row['name']} | {_cell(row['claimed'])} | {_cell(row['measured'])} |"
              for row in rows]
    lines.append("")
    lines += [f"- Image: {image['filename']} (sha256 {image['sha256']})"
              for image in d["images"]]
    return [*lines, ""] if d["images"] else lines
