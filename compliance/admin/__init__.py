"""The compliance pages of the admin (trace, inventory, model cards)."""

from compliance.admin import cards, inventory, trace  # noqa: F401  (registers their pages)
