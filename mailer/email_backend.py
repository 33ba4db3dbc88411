"""The project's Django e-mail backend (the `default` of `MAILERS`): whatever Django or the
project sends with `send_mail` (password resets, notices) becomes transactional messages:
recorded, queued on the `transactional` queue once the transaction commits, and sent within
the global and server limits, ahead of campaigns, with retries and a reply kept per message."""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from mailer import tx


class TransactionalBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for email in email_messages:
            recipients = email.recipients()
            if not recipients:
                continue
            message = email.message()
            data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
            envelope_from = parseaddr(email.from_email)[1]
            outgoing = [
                tx.Outgoing(
                    to_email=parseaddr(address)[1] or address,
                    envelope_from=envelope_from,
                    subject=str(message["Subject"] or ""),
                    message_id=str(message["Message-ID"] or ""),
                    data=data,
                )
                for address in recipients
            ]
            tx.record(outgoing, kind="site")
            sent += 1
        return sent
