"""What the engine tells the layers above it (webhooks), which it does not import. Sent
inside the transaction of the change they announce."""

from django.dispatch import Signal

# A transactional message was sent or failed for good. Argument: message (a TxMessage).
tx_message_finished = Signal()

# A bounce or complaint was recorded. Argument: bounce (a mailer.models.Bounce).
bounce_recorded = Signal()
