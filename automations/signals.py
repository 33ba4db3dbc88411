"""What sequences announce to the layers above them (webhooks), which they do not import."""

from django.dispatch import Signal

# A sequence's webhook step ran, inside the transaction that moved the subscribers on.
# Arguments: sequence, event (the step's event name), subscriber_ids.
sequence_event = Signal()
