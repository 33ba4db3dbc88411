"""What the subscribers app tells the layers above it, which it does not import.

Receivers are connected in the AppConfig.ready of the app that answers: the engine drops
unsent messages (mailer.receivers), campaigns count unsubscribes (campaigns.receivers).
All are sent inside the transaction of the change they announce.
"""

from django.dispatch import Signal

# A subscriber left lists (unsubscribe link, preferences page). Arguments: subscriber,
# ended (how many subscriptions ended now), campaign_id (the campaign whose link it was, or
# None). Unsent messages of campaigns to lists the subscriber is no longer on are dropped.
subscriptions_ended = Signal()

# A subscriber is about to be erased (GDPR). Argument: subscriber. Whatever else holds the
# address removes it now; the row is deleted after the receivers return.
subscriber_erasing = Signal()

# Everything stored about a subscriber is being gathered (GDPR access). Argument: subscriber.
# Each receiver returns a dict of sections to add to the export.
subscriber_data_requested = Signal()

# A subscriber's page shows the campaigns they got. Arguments: subscriber_id, limit. A
# receiver returns rows of campaign_id, campaign, status, sent_at, reply, opened, clicked.
subscriber_history_requested = Signal()

# Subscribers were blocklisted (by hand, the API, a bounce threshold). Argument: subscribers
# (those whose status changed now).
subscribers_blocklisted = Signal()

# A confirmation link confirmed subscriptions. Arguments: subscriber_id, lists.
subscriptions_confirmed = Signal()
