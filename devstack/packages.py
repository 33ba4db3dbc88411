"""Debian packages the tests use that PyPI does not provide: Chromium (the browser tests) and
Dovecot's POP3 server (the bounce mailbox's POP3 tests). Installed with apt-get when the
command runs as root on a machine that has it; otherwise a note says what to install."""

from __future__ import annotations

import os
import shutil
import subprocess

# executable -> (Debian packages, what needs them, environment variable that may name it)
PACKAGES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "chromium": (("chromium",), "the browser tests", "CHROMIUM"),
    "dovecot": (("dovecot-pop3d",), "the bounce mailbox's POP3 tests", "DOVECOT"),
}


def found(name: str, variable: str) -> str | None:
    """The executable (dovecot lives in /usr/sbin, often not on a user's PATH)."""
    return os.environ.get(variable) or shutil.which(name) or shutil.which(name, path="/usr/sbin")


def ensure_test_packages() -> None:
    missing = [name for name, (_, _, variable) in PACKAGES.items() if not found(name, variable)]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        for name in missing:
            packages, purpose, variable = PACKAGES[name]
            print(
                f"note: {name} is missing, so {purpose} will fail; install the Debian package "
                f"{' '.join(packages)} (or set {variable} to its executable)."
            )
        return
    wanted = [package for name in missing for package in PACKAGES[name][0]]
    print(f"Installing {', '.join(wanted)} for the tests (apt-get install)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> int:
        return subprocess.run(["apt-get", *args], env=env, stdout=subprocess.DEVNULL).returncode

    install = ("install", "-y", "-qq", "--no-install-recommends", *wanted)
    if apt(*install) != 0:  # the package lists may be missing on a fresh machine
        apt("update", "-qq")
        apt(*install)
