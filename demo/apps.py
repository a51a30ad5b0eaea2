from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo: the library's models trained on generated data, its people, its history
    and its traffic. No other app imports it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "demo"
    verbose_name = "Demo"
