"""A real POP3 server for tests: Dovecot (Debian's dovecot-pop3d, which ./dev test installs)
run as its own instance on loopback, from a configuration written here, with one user whose
mail is a maildir. Tests deliver by writing into the maildir, as a mail server does."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from devstack.packages import found
from tests.imap_server import mailbox_config
from tests.smtp_sink import free_port

MAILDIR = ("new", "cur", "tmp")
CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = {root}/dovecot.log
mail_location = maildir:{root}/mail/%u
first_valid_uid = 0
default_internal_user = {user}
default_login_user = {login_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/mail/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
"""


class Pop3Server:
    user = "bounces"
    password = "pop3-test-password"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        executable = found("dovecot", "DOVECOT")
        if executable is None:
            raise RuntimeError(
                "Dovecot is not installed: install the Debian package dovecot-pop3d "
                "(./dev test does so when it runs as root)."
            )
        self.executable = executable

    def start(self) -> Pop3Server:
        for folder in ("run", "state"):
            (self.root / folder).mkdir()
        for folder in MAILDIR:
            (self.root / "mail" / self.user / folder).mkdir(parents=True)
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        if os.geteuid() == 0:  # Dovecot will not run mail processes as root
            user, login_user = "dovecot", "dovenull"
            account = pwd.getpwnam(user)
            for folder in (self.root / "mail").rglob("*"):
                os.chown(folder, account.pw_uid, account.pw_gid)
            os.chown(self.root / "mail", account.pw_uid, account.pw_gid)
        else:
            user = login_user = pwd.getpwuid(os.geteuid()).pw_name
        group = user
        self.config = self.root / "dovecot.conf"
        self.config.write_text(
            CONFIG.format(
                root=self.root, user=user, login_user=login_user, group=group, port=self.port
            )
        )
        subprocess.run([self.executable, "-c", str(self.config)], check=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"Dovecot did not listen: {self.log()[-2000:]}")

    def stop(self) -> None:
        subprocess.run([self.executable, "-c", str(self.config), "stop"], check=False)
        shutil.rmtree(self.root / "run", ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def config_dict(self) -> dict:
        return mailbox_config("pop3", self.port, self.user, self.password)

    def deliver(self, *messages: bytes) -> None:
        """Into the maildir's new/ by way of tmp/, as a delivering mail server does."""
        box = self.root / "mail" / self.user
        for raw in messages:
            name = f"{time.time():.6f}.{uuid.uuid4().hex}.test"
            new, arriving = MAILDIR[0], box / MAILDIR[2] / name
            arriving.write_bytes(raw)
            arriving.chmod(0o644)
            os.replace(arriving, box / new / name)

    def count(self) -> int:
        box = self.root / "mail" / self.user
        return sum(1 for folder in ("new", "cur") for _ in (box / folder).iterdir())
