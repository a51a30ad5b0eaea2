"""A version's model card: its six sections, how they are checked, and `model_card.md`.

The card is the `model_card` section of a version's metadata (registration) and of the card
API and admin form afterwards: an object whose keys are among `SECTIONS`, each a text of at
most `MAX_SECTION_CHARS` characters. An empty text clears a section. The card is kept on the
row (`ModelVersion.model_card`, only the sections that say something) and rendered into the
version folder as `model_card.md` (the registry's own file: an upload of that name is
refused, an import renames it). The full card document, with approvals, deployments and
monitoring, is compliance's (compliance/cards.py): the file holds what the registry knows and
nothing that changes without the card changing, so that it goes stale only when the card does.
"""

from __future__ import annotations

from rest_framework import exceptions, serializers

from core.errors import Unprocessable

SECTIONS = ("intended_use", "out_of_scope_uses", "training_data", "evaluation_data",
            "limitations", "ethical_considerations")
TITLES = {
    "intended_use": "Intended use",
    "out_of_scope_uses": "Out-of-scope uses",
    "training_data": "Training data",
    "evaluation_data": "Evaluation data",
    "limitations": "Limitations",
    "ethical_considerations": "Ethical considerations",
}
MAX_SECTION_CHARS = 10_000
# The first line of every model_card.md the registry writes: reconcile rewrites a stale file
# that carries it, and leaves any other file of that name alone.
CARD_MARK = ("<!-- model_card.md: written by the model registry from its database. Edit the "
             "card in the admin or the API (PATCH .../card/); changes here are overwritten. -->")


class CardRefused(exceptions.ValidationError):
    """A registration whose metadata is valid JSON but whose model card cannot be kept."""

    status_code = 422


def problems(value) -> dict[str, str]:
    """What is wrong with a card: {key: message}; "" names the card itself."""
    if not isinstance(value, dict):
        return {"": f"an object with the sections {', '.join(SECTIONS)}, not "
                    f"{type(value).__name__}"}
    found = {}
    for key, text in value.items():
        if key not in SECTIONS:
            found[str(key)] = f"not a model card section; the sections are {', '.join(SECTIONS)}"
        elif not isinstance(text, str):
            found[key] = f"a text (string), not {type(text).__name__}"
        elif len(text) > MAX_SECTION_CHARS:
            found[key] = f"at most {MAX_SECTION_CHARS} characters ({len(text)} sent)"
        elif "\x00" in text:
            found[key] = "holds a NUL character"
    return found


def normalised(sections: dict) -> dict:
    """The sections that say something, stripped, in SECTIONS order."""
    return {key: sections[key].strip() for key in SECTIONS if (sections.get(key) or "").strip()}


def clean(value, *, prefix: str = "") -> dict:
    """A card checked for the service: a 422 naming `<prefix><key>` for the first problem."""
    found = problems(value)
    if found:
        key, message = next(iter(found.items()))
        raise Unprocessable(message, field=f"{prefix}{key}" if key else prefix.rstrip(".")
                            or "model_card")
    return value


def missing_sections(card: dict, required) -> list[str]:
    """Which of `required` the card does not fill (in SECTIONS order)."""
    filled = normalised(card or {})
    return [key for key in SECTIONS if key in set(required or ()) and key not in filled]


def unknown_sections(required) -> list[str]:
    """Names in a policy's `required_card_sections` that are not sections (or a non-list)."""
    if not isinstance(required, list):
        return [repr(required)]
    return [repr(name) if not isinstance(name, str) else name
            for name in required if name not in SECTIONS]


class ModelCardField(serializers.Field):
    """The `model_card` key of a registration's metadata: errors name each section, so the
    API says `metadata.model_card.<key>`."""

    default_error_messages = {"invalid": "invalid model card"}

    def to_internal_value(self, data):
        found = problems(data)
        if found:
            raise serializers.ValidationError(
                {key: [message] for key, message in found.items()} if "" not in found
                else [found[""]])
        return normalised(data)

    def to_representation(self, value):
        return value


# --- model_card.md ------------------------------------------------------------------------------


def card_file_text(version) -> str:
    """The model_card.md of a version: the sections and the facts fixed at registration."""
    card = version.model_card or {}
    lines = [CARD_MARK, "", f"# Model card: {version.model.name} {version.version}", "",
             f"- Model: {version.model.name} ({version.model.task_type})",
             f"- Version: {version.version} ({version.get_framework_display()}"
             + (f", {version.algorithm}" if version.algorithm else "") + ")",
             f"- Registered by: {version.created_by.get_username()}"
             + (f" on {version.created_at:%Y-%m-%d}" if version.created_at else ""),
             ""]
    for key in SECTIONS:
        lines += [f"## {TITLES[key]}", "", card.get(key) or "_Not stated._", ""]
    if version.metrics:
        lines += ["## Metrics claimed at registration", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in sorted(version.metrics.items())]
        lines.append("")
    lines += ["Measured metrics, approvals, deployments and monitoring: the card document "
              f"(GET /api/v1/models/{version.model.name}/versions/{version.version}/card/"
              "?output=md).", ""]
    return "\n".join(lines)


def is_ours(text: str) -> bool:
    return text.startswith(CARD_MARK)
