from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from campaigns import receivers
        from subscribers import signals

        signals.subscriptions_ended.connect(
            receivers.count_unsubscribe, dispatch_uid="campaigns.count_unsubscribe"
        )
