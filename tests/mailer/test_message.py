from __future__ import annotations

import email
import email.policy

import pytest

from mailer.message import HeaderInjectionError, build_message, encode_address, message_id

SUBJECT = " ".join(["Grüße aus Köln"] * 8)


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def test_it_builds_a_standard_multipart_message_with_unicode():
    data = build_message(
        headers=[
            ("From", "Shop <news@shop.example>"),
            ("To", encode_address("Zoë, the first", "zoe@example.com")),
            ("Subject", SUBJECT),
        ],
        text="Hallo Zoë\nline two",
        html="<p>Hallo Zoë</p>" + "x" * 300,
        boundary="=_b",
    )
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    message = parse(data)
    assert message["Subject"] == SUBJECT
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Hallo Zoë\nline two"
    assert message.get_body(("html",)).get_content().startswith("<p>Hallo Zoë</p>xxx")
    assert message["To"].addresses[0].display_name == "Zoë, the first"
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"


def test_it_refuses_line_breaks_in_headers():
    with pytest.raises(HeaderInjectionError, match="line break"):
        build_message(
            headers=[("Subject", "Hi\r\nBcc: victim@example.com")],
            text="x",
            html=None,
            boundary="b",
        )


def test_message_id_is_the_same_for_every_attempt_at_one_delivery():
    first = message_id(campaign_id=1, delivery_id=2, domain="shop.example", secret="s")
    again = message_id(campaign_id=1, delivery_id=2, domain="shop.example", secret="s")
    other = message_id(campaign_id=1, delivery_id=3, domain="shop.example", secret="s")
    assert first == again != other
    assert first.startswith("<c1.d2.") and first.endswith("@shop.example>")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "a@example.com"),
        ("Ada Lovelace", "Ada Lovelace <a@example.com>"),
        ('Lovelace, Ada "Countess"', '"Lovelace, Ada \\"Countess\\"" <a@example.com>'),
        ("Zoë", "=?utf-8?q?Zo=C3=AB?= <a@example.com>"),
    ],
)
def test_addresses_are_quoted_or_encoded_only_when_needed(name, expected):
    encoded = encode_address(name, "a@example.com")
    assert encoded == expected
    parsed = parse(f"To: {encoded}\r\n\r\n".encode())["To"].addresses[0]
    assert (parsed.display_name, parsed.addr_spec) == (name, "a@example.com")


@pytest.mark.parametrize(
    ("html", "encoding"),
    [
        ("<p>Hello &amp; welcome</p>\r\n<p>.a line starting with a dot</p>", "7bit"),
        ("<p>Grüße</p>", "quoted-printable"),  # not ASCII
        ("<p>" + "x" * 1200 + "</p>", "quoted-printable"),  # a line too long for SMTP
        ("<p>a bare\rcarriage return</p>", "quoted-printable"),
        ("<p>--=_b</p>", "quoted-printable"),  # the boundary must never appear in a part
    ],
)
def test_parts_are_sent_as_they_are_when_they_can_be_and_encoded_otherwise(html, encoding):
    data = build_message(
        headers=[("Subject", "Hi")], text="Hello\nthere", html=html, boundary="=_b"
    )
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    part = parse(data).get_body(("html",))
    assert part["Content-Transfer-Encoding"] == encoding
    assert part.get_content().replace("\r\n", "\n") == html.replace("\r\n", "\n")
    text = parse(data).get_body(("plain",))
    assert text["Content-Transfer-Encoding"] == "7bit"
    assert text.get_content().replace("\r\n", "\n") == "Hello\nthere"
