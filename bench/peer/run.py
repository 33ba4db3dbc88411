"""Queue a personalised campaign in django-post-office and time its delivery.

    python -m bench.peer.run queue N            queue N personalised emails, print seconds
    python -m bench.peer.run wait N             wait until N are sent, print seconds

Run with DJANGO_SETTINGS_MODULE=bench.peer.settings.
"""

from __future__ import annotations

import sys
import time

import django


def main() -> None:
    # As a project's __init__ would: the Celery app must exist before tasks are sent.
    from bench.peer import celery_app  # noqa: F401

    django.setup()
    from post_office import mail
    from post_office.models import STATUS, Email, EmailTemplate

    from bench import content

    command, count = sys.argv[1], int(sys.argv[2])
    if command == "queue":
        Email.objects.all().delete()
        template, _ = EmailTemplate.objects.update_or_create(
            name="bench",
            defaults={
                "subject": content.SUBJECT,
                "html_content": content.LAYOUT.replace("{{ content }}", content.BODY),
                "content": "Hello {{ subscriber.name }}, our autumn collection has arrived.",
            },
        )
        started = time.monotonic()
        for start in range(0, count, 1000):
            mail.send_many(
                [
                    {
                        "recipients": [f"p{n}@bench{n % 50}.example"],
                        "sender": "Bench <bench@example.com>",
                        "template": template,
                        "context": {
                            "subscriber": {"name": f"Reader {n}", "attributes": {"city": "Oslo"}}
                        },
                        "render_on_delivery": True,
                    }
                    for n in range(start, min(start + 1000, count))
                ]
            )
        print(f"{time.monotonic() - started:.3f}")
    elif command == "wait":
        started = time.monotonic()
        while Email.objects.filter(status=STATUS.sent).count() < count:
            if time.monotonic() - started > 3600:
                raise SystemExit("peer did not finish within an hour")
            time.sleep(0.5)
        print(f"{time.monotonic() - started:.3f}")


if __name__ == "__main__":
    main()
