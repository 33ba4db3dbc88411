"""Reading bounce reports: delivery-status notifications (RFC 3464), complaint reports (ARF,
RFC 5965) and, through flufl.bounce, the many non-standard formats older servers send.

`read(raw)` says what a report is about (who failed, how, and which message of ours it was
about) without touching the database; mailer.mailbox ties that to the ledger. A report that
cannot be parsed comes back with `problem` set, never as an exception.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import Message

from flufl.bounce import all_failures

# Our campaign messages' Message-ID (mailer.message.message_id): campaign, delivery, signature.
SIGNED_ID = re.compile(rb"<c(\d{1,18})\.d(\d{1,18})\.([0-9a-f]{12})@[^<>\s]{1,253}>")
CAMPAIGN_HEADER = re.compile(rb"^X-Campaign-ID:[ \t]*(\d{1,18})[ \t]*\r?$", re.IGNORECASE | re.M)
ADDRESS = re.compile(r"^(?:rfc822;)?\s*<?([^<>\s;]+@[^<>\s;]+?)>?\s*$", re.IGNORECASE)
# Bigger than any bounce worth reading: a report quoting a whole newsletter with images.
MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Failure:
    email: str
    kind: str  # "hard", "soft" or "complaint" (mailer.models.Bounce.Kind)
    status: str = ""  # the enhanced status code (5.1.1) or the complaint's feedback type
    diagnostic: str = ""


@dataclass
class Report:
    format: str  # "dsn", "arf", "other" or "none"
    failures: list[Failure] = field(default_factory=list)
    # Our signed Message-IDs quoted in the report: (campaign id, delivery id, signature).
    signed_ids: list[tuple[int, int, str]] = field(default_factory=list)
    campaign_ids: list[int] = field(default_factory=list)
    subject: str = ""
    problem: str = ""


def read(raw: bytes) -> Report:
    """What the report says; format "none" when it is not a bounce or complaint at all."""
    if len(raw) > MAX_BYTES:
        return Report("none", problem=f"larger than {MAX_BYTES // 1024 // 1024} MB; not read")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        subject = str(message.get("Subject", ""))[:200]
        report = _read_message(message)
    except Exception as error:  # a malformed message must not stop the mailbox
        return Report("none", problem=f"unreadable: {type(error).__name__}: {error}"[:300])
    report.subject = subject
    report.signed_ids = _unique((int(c), int(d), s.decode()) for c, d, s in SIGNED_ID.findall(raw))
    report.campaign_ids = _unique(int(c) for c in CAMPAIGN_HEADER.findall(raw))
    return report


def _read_message(message: Message) -> Report:
    content_type = message.get_content_type()
    report_type = str(message.get_param("report-type") or "").lower()
    if content_type == "multipart/report" and report_type == "feedback-report":
        return _arf(message)
    kinds = {part.get_content_type() for part in message.walk()}
    if "message/delivery-status" in kinds:
        dsn = _dsn(message)
        if dsn.failures:
            return dsn
    if "message/feedback-report" in kinds:  # a report forwarded inside another message
        return _arf(message)
    return _other(message)


def _dsn(message: Message) -> Report:
    """RFC 3464: one block of fields per recipient after the per-message block."""
    failures: list[Failure] = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:
            if not isinstance(block, Message):
                continue
            failure = _recipient(block)
            if failure is not None and failure.email not in {f.email for f in failures}:
                failures.append(failure)
    return Report("dsn", failures=failures)


def _recipient(block: Message) -> Failure | None:
    action = str(block.get("Action", "")).strip().lower()
    status = str(block.get("Status", "")).strip().split(" ")[0]
    if action not in ("failed", "delayed"):
        return None  # delivered, relayed, expanded: not a bounce
    address = _address(block.get("Original-Recipient")) or _address(block.get("Final-Recipient"))
    if address is None:
        return None
    hard = action == "failed" and not status.startswith("4")
    return Failure(
        email=address,
        kind="hard" if hard else "soft",
        status=status[:20],
        diagnostic=" ".join(str(block.get("Diagnostic-Code", "")).split())[:300],
    )


def _arf(message: Message) -> Report:
    """RFC 5965: the complaint names the original recipient; a feedback type per report."""
    feedback: Message | None = None
    original: Message | None = None
    for part in message.walk():
        kind = part.get_content_type()
        payload = part.get_payload()
        if kind == "message/feedback-report" and feedback is None:
            first = payload[0] if isinstance(payload, list) and payload else part
            feedback = first if isinstance(first, Message) else part
        elif kind in ("message/rfc822", "text/rfc822-headers") and original is None:
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                original = payload[0]
            elif isinstance(payload, str):
                original = email.message_from_string(payload, policy=email.policy.compat32)
    if feedback is None:
        return Report("arf", problem="a feedback report without its message/feedback-report part")
    feedback_type = str(feedback.get("Feedback-Type", "abuse")).strip().lower()
    address = _address(feedback.get("Original-Rcpt-To"))
    if address is None and original is not None:
        address = _address(original.get("To"))
    if address is None:
        return Report("arf", problem="a complaint that does not say whom the message went to")
    return Report("arf", failures=[Failure(address, "complaint", status=feedback_type[:20])])


def _other(message: Message) -> Report:
    """The formats before RFC 3464 (qmail, old Exchange, Yahoo, …), through flufl.bounce."""
    temporary, permanent = all_failures(message)
    failures = [
        Failure(address, kind)
        for kind, found in (("hard", permanent), ("soft", temporary - permanent))
        for address in sorted(_decode(found))
    ]
    return Report("other" if failures else "none", failures=failures)


def _address(value: object) -> str | None:
    if not value:
        return None
    match = ADDRESS.match(" ".join(str(value).split()))
    return match.group(1).lower() if match else None


def _decode(addresses: frozenset[bytes] | set[bytes]) -> set[str]:
    found = set()
    for address in addresses:
        text = address.decode("utf-8", "replace").strip().strip("<>").lower()
        if "@" in text and len(text) <= 254:
            found.add(text)
    return found


def _unique[T](items) -> list[T]:
    return list(dict.fromkeys(items))
