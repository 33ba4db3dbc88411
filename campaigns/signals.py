"""What the campaigns app tells the engine, which it does not import."""

from django.dispatch import Signal

# A campaign's status changed (Campaign.change_status), inside the transaction that changed
# it. Arguments: campaign, old, new. The engine stops serving a paused or cancelled
# campaign at once (mailer.receivers) rather than at its next tick.
campaign_status_changed = Signal()
