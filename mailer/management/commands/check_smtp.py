from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from mailer.models import SmtpServer
from mailer.smtp import ServerConfig, check_server


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

    def check_server(self, config: ServerConfig) -> bool:
        self.stdout.write(f"{config.name} ({config.host}:{config.port}, {config.security}):")
        steps = check_server(config)
        for step in steps:
            mark = self.style.SUCCESS("ok  ") if step.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"  {mark} {step.text}")
        return all(step.ok for step in steps)
