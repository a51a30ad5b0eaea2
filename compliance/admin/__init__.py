"""The compliance pages of the admin (trace, inventory, model cards)."""

from compliance.admin import trace  # noqa: F401  (registers its pages)
