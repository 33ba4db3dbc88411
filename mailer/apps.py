from django.apps import AppConfig


class MailerConfig(AppConfig):
    name = "mailer"
    verbose_name = "Mailer engine"

    def ready(self) -> None:
        from mailer import signals  # noqa: F401 (connects the worker signals)
