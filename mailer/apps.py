from typing import Any

from django.apps import AppConfig
from django.core import checks


def anymail_checks(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """django-anymail's own checks (deprecated or insecure webhook settings), loaded when the
    checks run: its app is not installed (settings.base says why)."""
    from anymail.checks import check_deprecated_settings, check_insecure_settings

    return [
        *check_deprecated_settings(app_configs, **kwargs),
        *check_insecure_settings(app_configs, **kwargs),
    ]


class MailerConfig(AppConfig):
    name = "mailer"
    verbose_name = "Mailer engine"

    def ready(self) -> None:
        # Importing these connects their receivers (Celery worker signals, anymail's tracking).
        from campaigns import signals as campaign_signals
        from mailer import bounces, receivers, segments  # noqa: F401
        from settings import audit
        from subscribers import signals as subscriber_signals

        campaign_signals.campaign_status_changed.connect(
            receivers.stop_serving, dispatch_uid="mailer.stop_serving"
        )
        subscriber_signals.subscriptions_ended.connect(
            receivers.drop_unsent_after_leaving, dispatch_uid="mailer.drop_unsent"
        )
        subscriber_signals.subscriber_erasing.connect(
            receivers.forget_erased, dispatch_uid="mailer.forget_erased"
        )
        subscriber_signals.subscriber_data_requested.connect(
            receivers.messages_sent_to, dispatch_uid="mailer.messages_sent_to"
        )
        subscriber_signals.subscriber_history_requested.connect(
            receivers.campaign_history, dispatch_uid="mailer.campaign_history"
        )
        campaign_signals.campaign_status_changed.connect(
            receivers.audit_status, dispatch_uid="mailer.audit_status"
        )
        campaign_signals.campaign_status_changed.connect(
            receivers.roll_up_when_finished, dispatch_uid="mailer.roll_up"
        )
        checks.register(anymail_checks)
        audit.register_models()
        segments.register()  # the segment conditions on the ledger and the bounces
