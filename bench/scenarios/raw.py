"""Scenario 2: the raw-SMTP baseline (prebuilt messages over smtplib): the ceiling a Python
sender reaches on this machine."""

from __future__ import annotations

import multiprocessing
import smtplib
import threading
import time
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from bench import content
from bench.stack import PORTS, Stack


def _raw_sender(port: int, messages: list[tuple[str, bytes]], connections: int, out) -> None:
    """One process: `connections` threads, each with its own persistent SMTP connection."""

    def send(chunk):
        smtp = smtplib.SMTP("127.0.0.1", port)
        for to, data in chunk:
            smtp.sendmail("bench@example.com", [to], data)
        smtp.quit()

    threads = [
        threading.Thread(target=send, args=(messages[i::connections],)) for i in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(len(messages))


def raw_baseline(stack: Stack, recipients: int, processes: int, connections: int) -> dict:
    """Scenario 2: prebuilt messages pushed with smtplib over persistent connections."""
    subject, html, text = content.rendered_example()
    message = MIMEMultipart("alternative")
    message["Subject"] = subject
    message["From"] = "Bench <bench@example.com>"
    message.attach(MIMEText(text, "plain", "utf-8"))
    message.attach(MIMEText(html, "html", "utf-8"))
    prebuilt = []
    for n in range(recipients):
        message["To"] = f"r{n}@bench.example"
        prebuilt.append((f"r{n}@bench.example", message.as_bytes()))
        del message["To"]
    queue: multiprocessing.Queue = multiprocessing.Queue()
    per_process = [prebuilt[i::processes] for i in range(processes)]
    workers = [
        multiprocessing.Process(target=_raw_sender, args=(PORTS["sink"], part, connections, queue))
        for part in per_process
    ]
    started = time.monotonic()
    for w in workers:
        w.start()
    sent = sum(queue.get() for _ in workers)
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    return {
        "messages": sent,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(sent / elapsed, 1),
        "message_bytes": len(prebuilt[0][1]),
    }
