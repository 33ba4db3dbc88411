"""What an attachment adds to each message: the benchmark's campaign (bench/content.py)
composed for many recipients without an attachment, then with a PDF of 100 KB and of 1 MB.
The composer encodes a campaign's attachments once (mailer.message.attachment_parts); per
recipient, the same bytes are joined into the message.

    .venv/bin/python -m bench.attachments [--messages 20000]

Needs no server: the campaign is not saved, and the attachment is set on the composer as the
library would (from the stored file, read once per campaign and process)."""

from __future__ import annotations

import argparse
import json
import os
import time

from bench import offline


def measure(messages: int, size: int) -> dict:
    from bench.content import BODY, LAYOUT, SUBJECT
    from campaigns.models import Campaign
    from campaigns.rendering import PreparedContent
    from mailer.compose import CampaignComposer
    from mailer.message import attachment_parts

    campaign = Campaign(
        name="Bench", subject=SUBJECT, body=BODY, from_email="News <n@shop.example>"
    )
    content = PreparedContent(subject=SUBJECT, body=BODY, layout=LAYOUT, format="html")
    composer = CampaignComposer(campaign, content)
    started = time.perf_counter()
    if size:
        pdf = b"%PDF-1.4\n" + os.urandom(size - 9)
        composer.attachments = attachment_parts(
            [("terms.pdf", "application/pdf", pdf)], composer.boundary
        )
    prepared = time.perf_counter() - started
    total = 0
    started = time.process_time()
    for n in range(messages):
        total += len(
            composer.message(
                delivery_id=n,
                subscriber_id=n,
                email=f"r{n}@bench.example",
                name=f"Reader {n}",
                attributes={"city": "Oslo"},
            )
        )
    cpu = time.process_time() - started
    return {
        "attachment_bytes": size,
        "messages": messages,
        "encode_once_s": round(prepared, 4),
        "cpu_s_per_1000": round(1000 * cpu / messages, 4),
        "message_bytes": total // messages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    offline.setup("attachments")
    rows = [measure(args.messages, size) for size in (0, 100 * 1024, 1024 * 1024)]
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
