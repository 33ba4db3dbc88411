from django.apps import AppConfig


class MailerConfig(AppConfig):
    name = "mailer"
    verbose_name = "Mailer engine"

    def ready(self) -> None:
        from mailer import bounces, signals  # noqa: F401 (connect the signal receivers)
