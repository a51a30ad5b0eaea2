"""The compliance pages of the admin (trace, inventory, model cards)."""
