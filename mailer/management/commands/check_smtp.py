from __future__ import annotations

import smtplib
import ssl

from django.core.management.base import BaseCommand, CommandError

from mailer.models import SmtpServer
from mailer.smtp import ServerConfig, connect


class Command(BaseCommand):
    help = (
        "Check SMTP servers step by step: connect, EHLO, STARTTLS or TLS, and log in. Without "
        "a name, every enabled server (or the SMTP_URL default when none is configured)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?", help="SMTP server name, or 'default' for SMTP_URL.")

    def handle(self, *args, name: str | None, **options) -> None:
        if name == "default":
            configs = [ServerConfig.default()]
        elif name:
            server = SmtpServer.objects.filter(name=name).first()
            if server is None:
                known = ", ".join(SmtpServer.objects.values_list("name", flat=True)) or "none"
                raise CommandError(
                    f"There is no SMTP server named {name!r} (configured: {known}; 'default' "
                    "checks SMTP_URL)."
                )
            configs = [ServerConfig.from_model(server)]
        else:
            servers = SmtpServer.objects.filter(is_enabled=True)
            configs = [ServerConfig.from_model(s) for s in servers] or [ServerConfig.default()]
        failed = [c.name for c in configs if not self.check_server(c)]
        if failed:
            raise CommandError(f"Failed: {', '.join(failed)}. The step that failed says why.")

    def step(self, ok: bool, text: str) -> None:
        mark = self.style.SUCCESS("ok  ") if ok else self.style.ERROR("FAIL")
        self.stdout.write(f"  {mark} {text}")

    def check_server(self, config: ServerConfig) -> bool:
        self.stdout.write(f"{config.name} ({config.host}:{config.port}, {config.security}):")
        try:
            smtp = connect(config)
        except (OSError, smtplib.SMTPException) as error:
            self.step(False, f"connect: {error}. Is the host and port right, and reachable?")
            return False
        try:
            self.step(True, "connected")
            code, reply = smtp.ehlo()
            if code != 250:
                self.step(False, f"EHLO: {code} {reply.decode(errors='replace')}")
                return False
            extensions = ", ".join(sorted(smtp.esmtp_features)) or "none"
            self.step(True, f"EHLO: extensions {extensions}")
            if config.security == SmtpServer.Security.STARTTLS:
                try:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                    self.step(True, "STARTTLS")
                except (OSError, smtplib.SMTPException) as error:
                    self.step(False, f"STARTTLS: {error}. Try security 'TLS' or 'none'.")
                    return False
            if config.username:
                try:
                    smtp.login(config.username, config.password)
                    self.step(True, f"logged in as {config.username!r}")
                except smtplib.SMTPException as error:
                    self.step(
                        False,
                        f"login as {config.username!r}: {error}. Check the user name and the "
                        "environment variable named in the server's password variable.",
                    )
                    return False
            return True
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
