"""A local SMTP server that keeps every message it receives, with a small web view.

    python -m devstack.mailbox --smtp-port 2525 --http-port 8025 --db mailbox.sqlite3

Messages are stored in SQLite; the web view lists the newest, shows one message (headers,
text and HTML parts) and serves `/api/messages` as JSON for scripts and tests.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import json
import re
import signal
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

from aiosmtpd.controller import Controller

SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    subject TEXT NOT NULL,
    campaign TEXT NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS message_rcpt ON message (rcpt_to);
"""


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(SCHEMA)
    return connection


class StoringHandler:
    def __init__(self, db_path: Path) -> None:
        self.db = connect(db_path)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        rows = [
            (
                time.time(),
                envelope.mail_from,
                rcpt,
                str(parsed.get("Subject", "")),
                str(parsed.get("X-Campaign-ID", "")),
                raw,
            )
            for rcpt in envelope.rcpt_tos
        ]
        with self.lock:
            self.db.executemany(
                "INSERT INTO message (received_at, mail_from, rcpt_to, subject, campaign, raw)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            self.db.commit()
        return "250 OK: message stored"


def _parts(raw: bytes) -> tuple[list[tuple[str, str]], str, str]:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    text = text_part.get_content() if text_part is not None else ""
    body_html = html_part.get_content() if html_part is not None else ""
    return [(k, str(v)) for k, v in parsed.items()], text, body_html


def _attachments(raw: bytes) -> list[tuple[str, str, bytes]]:
    """The message's attachments: file name, content type, content."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    found = []
    for part in parsed.iter_attachments():
        content = part.get_payload(decode=True)
        data = content if isinstance(content, bytes) else b""
        found.append((part.get_filename() or "attachment", part.get_content_type(), data))
    return found


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}
table{{border-collapse:collapse;width:100%}}td,th{{padding:.3rem .6rem;border-bottom:1px solid #ddd;
text-align:left;font-size:.9rem}}pre{{white-space:pre-wrap;background:#f6f6f6;padding:1rem}}
iframe{{width:100%;height:30rem;border:1px solid #ccc}}</style></head><body>{body}</body></html>"""


def _unsubscribe_button(headers: list[tuple[str, str]]) -> str:
    """What a mail client's unsubscribe button does (RFC 8058): a POST of
    List-Unsubscribe=One-Click to the message's https List-Unsubscribe URL."""
    found = dict((k.lower(), v) for k, v in headers)
    if found.get("list-unsubscribe-post", "").strip() != "List-Unsubscribe=One-Click":
        return ""
    urls = re.findall(r"<(https?://[^>]+)>", found.get("list-unsubscribe", ""))
    if not urls:
        return ""
    return (
        f"<form method='post' action='{html.escape(urls[0])}' target='_blank'>"
        "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<button>Unsubscribe (one click, as a mail client does)</button></form>"
    )


def make_http_handler(db: sqlite3.Connection, lock: threading.Lock):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args) -> None:
            pass

        def _send(self, status: int, body: str, content_type: str = "text/html") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            with lock:
                if url.path == "/":
                    self._index(query)
                elif url.path.startswith("/message/") and "/attachment/" in url.path:
                    self._attachment(*url.path.split("/")[2:5:2])
                elif url.path.startswith("/message/"):
                    self._message(url.path.rsplit("/", 1)[1])
                elif url.path == "/api/messages":
                    self._api(query)
                else:
                    self._send(404, PAGE.format(title="Not found", body="<h1>Not found</h1>"))

        def _index(self, query) -> None:
            to = query.get("to", [""])[0]
            where, params = ("WHERE rcpt_to = ?", [to]) if to else ("", [])
            total = db.execute(f"SELECT count(*) FROM message {where}", params).fetchone()[0]  # noqa: S608
            by_subject = db.execute(
                "SELECT subject, count(*) FROM message GROUP BY subject ORDER BY 2 DESC LIMIT 20"
            ).fetchall()
            rows = db.execute(
                f"SELECT id, received_at, mail_from, rcpt_to, subject FROM message {where} "  # noqa: S608
                "ORDER BY id DESC LIMIT 200",
                params,
            ).fetchall()
            lines = [
                f"<tr><td><a href='/message/{i}'>{i}</a></td>"
                f"<td>{time.strftime('%H:%M:%S', time.localtime(at))}</td>"
                f"<td>{html.escape(frm)}</td><td>{html.escape(rcpt)}</td>"
                f"<td>{html.escape(subject)}</td></tr>"
                for i, at, frm, rcpt, subject in rows
            ]
            counts = "".join(
                f"<li>{html.escape(s or '(no subject)')}: {n}</li>" for s, n in by_subject
            )
            body = (
                f"<h1>Mailbox: {total} messages</h1><ul>{counts}</ul>"
                "<form><input name='to' placeholder='recipient address' "
                f"value='{html.escape(to)}'> <button>Filter</button></form>"
                "<table><tr><th>#</th><th>time</th><th>from</th><th>to</th><th>subject</th></tr>"
                + "".join(lines)
                + "</table>"
            )
            self._send(200, PAGE.format(title="Mailbox", body=body))

        def _message(self, ident: str) -> None:
            row = db.execute(
                "SELECT rcpt_to, raw FROM message WHERE id = ?", [ident if ident.isdigit() else -1]
            ).fetchone()
            if row is None:
                self._send(404, PAGE.format(title="Not found", body="<h1>No such message</h1>"))
                return
            headers, text, body_html = _parts(row[1])
            files = "".join(
                f"<li><a href='/message/{ident}/attachment/{n}'>{html.escape(name)}</a> "
                f"({html.escape(kind)}, {len(content)} bytes)</li>"
                for n, (name, kind, content) in enumerate(_attachments(row[1]))
            )
            header_rows = "".join(
                f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in headers
            )
            body = (
                f"<p><a href='/'>&larr; all messages</a></p><h1>To {html.escape(row[0])}</h1>"
                f"{_unsubscribe_button(headers)}"
                f"<table>{header_rows}</table><h2>HTML</h2>"
                f"<iframe sandbox srcdoc='{html.escape(body_html)}'></iframe>"
                f"<h2>Text</h2><pre>{html.escape(text)}</pre>"
                + (f"<h2>Attachments</h2><ul id='attachments'>{files}</ul>" if files else "")
            )
            self._send(200, PAGE.format(title="Message", body=body))

        def _attachment(self, ident: str, number: str) -> None:
            row = db.execute(
                "SELECT raw FROM message WHERE id = ?", [ident if ident.isdigit() else -1]
            ).fetchone()
            files = _attachments(row[0]) if row else []
            if not number.isdigit() or int(number) >= len(files):
                self._send(404, PAGE.format(title="Not found", body="<h1>No such file</h1>"))
                return
            name, _, content = files[int(number)]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name)}")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _api(self, query) -> None:
            to = query.get("to", [""])[0]
            limit = min(int(query.get("limit", ["100"])[0] or 100), 10000)
            where, params = ("WHERE rcpt_to = ?", [to]) if to else ("", [])
            total = db.execute(f"SELECT count(*) FROM message {where}", params).fetchone()[0]  # noqa: S608
            rows = db.execute(
                f"SELECT id, received_at, mail_from, rcpt_to, subject, campaign, raw "  # noqa: S608
                f"FROM message {where} ORDER BY id DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
            messages = []
            for i, at, frm, rcpt, subject, campaign, raw in rows:
                _, text, body_html = _parts(raw)
                messages.append(
                    {
                        "id": i,
                        "received_at": at,
                        "from": frm,
                        "to": rcpt,
                        "subject": subject,
                        "campaign": campaign,
                        "text": text,
                        "html": body_html,
                        "attachments": [
                            {"filename": name, "content_type": kind, "size": len(content)}
                            for name, kind, content in _attachments(raw)
                        ],
                    }
                )
            self._send(200, json.dumps({"total": total, "messages": messages}), "application/json")

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--db", type=Path, required=True)
    args = parser.parse_args()

    handler = StoringHandler(args.db)
    controller = Controller(
        handler, hostname="127.0.0.1", port=args.smtp_port, data_size_limit=50 * 1024 * 1024
    )
    controller.start()
    http = ThreadingHTTPServer(
        ("127.0.0.1", args.http_port), make_http_handler(handler.db, handler.lock)
    )
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=http.shutdown).start())
    print(
        f"mailbox: SMTP on 127.0.0.1:{args.smtp_port}, web on http://127.0.0.1:{args.http_port}/",
        flush=True,
    )
    try:
        http.serve_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
