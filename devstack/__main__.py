"""./dev up | down | status | test [pytest arguments] — see README.md."""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devstack import messages
from devstack.packages import ensure_test_packages
from devstack.processes import Service, port_open, wait_for
from devstack.servers import Postgres, redis_service, wait_for_redis

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("MAILER_STATE_DIR", ROOT / ".state"))
PYTHON = sys.executable
CELERY = str(Path(PYTHON).parent / "celery")


def _port(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit():
        raise SystemExit(f"error: {name}={value!r} is not a port number")
    return int(value)


# Development ports; all differ from the system defaults so nothing collides with local servers.
PORTS = {
    "postgres": _port("DEV_POSTGRES_PORT", 55432),
    "redis": _port("DEV_REDIS_PORT", 56379),
    "smtp": _port("DEV_SMTP_PORT", 2525),
    "mailbox": _port("DEV_MAILBOX_PORT", 8025),
    "web": _port("DEV_WEB_PORT", 8000),
    "flower": _port("DEV_FLOWER_PORT", 5555),
}
TEST_PORTS = {
    "postgres": _port("TEST_POSTGRES_PORT", 55433),
    "redis": _port("TEST_REDIS_PORT", 56380),
}


def load_or_create_secrets(path: Path) -> dict[str, str]:
    """Secrets for the local system, made once and kept, so that `up` twice is harmless."""
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = value
    defaults = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "FLOWER_PASSWORD": secrets.token_urlsafe(12),
        "METRICS_TOKEN": secrets.token_urlsafe(24),
    }
    changed = False
    for key, value in defaults.items():
        if key not in values:
            values[key] = value
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return values


def dev_environment(state: Path) -> dict[str, str]:
    keys = load_or_create_secrets(state / "secrets")
    return {
        "DJANGO_SETTINGS_MODULE": "settings.base",
        "SECRET_KEY": keys["SECRET_KEY"],
        "DEBUG": "true",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": f"http://127.0.0.1:{PORTS['web']}",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{PORTS['postgres']}/mailer",
        "REDIS_URL": f"redis://127.0.0.1:{PORTS['redis']}/0",
        "SMTP_URL": f"smtp://127.0.0.1:{PORTS['smtp']}",
        "DEFAULT_FROM_EMAIL": "Demo Shop <news@demo.example>",
        "FLOWER_BASIC_AUTH": f"admin:{keys['FLOWER_PASSWORD']}",
        "METRICS_TOKEN": keys["METRICS_TOKEN"],
        "DJANGO_SUPERUSER_PASSWORD": keys["ADMIN_PASSWORD"],
        "STATIC_ROOT": str(state / "static"),
        "MEDIA_ROOT": str(state / "media"),
        "LOG_FORMAT": "logfmt",
    }


def dev_services(state: Path, env: dict[str, str]) -> list[Service]:
    run = state / "run"
    celery = [CELERY, "-A", "settings"]
    worker = [PYTHON, "-m", "settings.worker"]  # Celery's worker command (settings/worker.py)
    return [
        redis_service(run_dir=run, data_dir=state / "redis", port=PORTS["redis"], persistent=True),
        Service(
            "mailbox",
            [
                PYTHON,
                "-m",
                "devstack.mailbox",
                "--smtp-port",
                str(PORTS["smtp"]),
                "--http-port",
                str(PORTS["mailbox"]),
                "--db",
                str(state / "mailbox.sqlite3"),
            ],
            run_dir=run,
            env=env,
            port=PORTS["mailbox"],
            cwd=ROOT,
        ),
        Service(
            "web",
            [
                str(Path(PYTHON).parent / "gunicorn"),
                "settings.wsgi",
                "--bind",
                f"127.0.0.1:{PORTS['web']}",
                "--workers",
                "2",
                "--access-logfile",
                "-",
            ],
            run_dir=run,
            env=env,
            port=PORTS["web"],
            cwd=ROOT,
        ),
        Service(
            "beat",
            [*celery, "beat", "--schedule", str(state / "celerybeat-schedule")],
            run_dir=run,
            env=env,
            cwd=ROOT,
        ),
        Service(
            "dispatcher",
            [*worker, "-Q", "dispatch", "-c", "2", "-n", "dispatcher@%h"],
            run_dir=run,
            env=env,
            cwd=ROOT,
        ),
        Service(
            "worker",
            [*worker, "-Q", "transactional", "-c", "2", "-n", "worker@%h"],
            run_dir=run,
            env=env,
            cwd=ROOT,
        ),
        Service(
            "background",
            [*worker, "-Q", "default", "-c", "1", "-n", "background@%h"],
            run_dir=run,
            env=env,
            cwd=ROOT,
        ),
        *(
            Service(
                f"sender-{n}",
                [*worker, "-Q", "send", "-c", "4", "-n", f"sender{n}@%h"],
                run_dir=run,
                env=env,
                cwd=ROOT,
            )
            for n in (1, 2)
        ),
        Service(
            "flower",
            [
                *celery,
                "flower",
                "--conf=settings/flowerconfig.py",
                "--address=127.0.0.1",
                f"--port={PORTS['flower']}",
            ],
            run_dir=run,
            env=env,
            port=PORTS["flower"],
            cwd=ROOT,
        ),
    ]


def manage(env: dict[str, str], *args: str, check: bool = True) -> int:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env={**os.environ, **env}, check=check
    ).returncode


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
            return response.status < 500
    except OSError as error:
        # A 401 from Flower or a redirect to the admin login still means "up".
        return getattr(error, "code", 500) < 500


def cmd_up(_args: argparse.Namespace) -> int:
    state = STATE / "dev"
    env = dev_environment(state)
    postgres = Postgres(state / "postgres", PORTS["postgres"], state / "run" / "postgres.log")
    print(postgres.start())
    postgres.create_database("mailer")
    services = dev_services(state, env)
    redis = services[0]
    print(redis.start())
    wait_for_redis(PORTS["redis"], redis.log)

    manage(env, "migrate", "--no-input", "-v", "0")
    manage(env, "collectstatic", "--no-input", "-v", "0")
    manage(env, "ensure_superuser", "--username", "admin")

    for service in services[1:]:
        print(service.start())
    for service in services[1:]:
        if service.port is not None:
            port = service.port
            wait_for(lambda p=port: port_open(p), timeout=60, what=service.name, log=service.log)
    wait_for(
        lambda: http_ok(f"http://127.0.0.1:{PORTS['web']}/admin/login/"),
        timeout=60,
        what="web",
        log=state / "run" / "web.log",
    )

    manage(env, "seed_demo", "--csv", str(state / "demo-subscribers.csv"))

    keys = load_or_create_secrets(state / "secrets")
    print(
        f"""
The mail sender is up.
  Admin:    http://127.0.0.1:{PORTS["web"]}/admin/   user admin, password {keys["ADMIN_PASSWORD"]}
  Sending:  http://127.0.0.1:{PORTS["web"]}/admin/status/   (what each campaign does, and why)
  Join:     http://127.0.0.1:{PORTS["web"]}/subscribe/<list id>/   ("Events": double opt-in)
  Metrics:  http://127.0.0.1:{PORTS["web"]}/metrics   Authorization: Bearer {keys["METRICS_TOKEN"]}
  Flower:   http://127.0.0.1:{PORTS["flower"]}/   user admin, password {keys["FLOWER_PASSWORD"]}
  Mailbox:  http://127.0.0.1:{PORTS["mailbox"]}/   (every message the demo sends lands here)
  Status:   ./dev status        Stop: ./dev down        Logs: {state / "run"}/*.log
  Commands: set -a; . {state / "env"}; set +a; .venv/bin/python manage.py campaign status
"""
    )
    (state / "env").write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
    (state / "env").chmod(0o600)
    return 0


def cmd_down(_args: argparse.Namespace) -> int:
    state = STATE / "dev"
    env = dev_environment(state)
    for service in reversed(dev_services(state, env)):
        print(service.stop())
    print(Postgres(state / "postgres", PORTS["postgres"], state / "run" / "postgres.log").stop())
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    state = STATE / "dev"
    env = dev_environment(state)
    postgres = Postgres(state / "postgres", PORTS["postgres"], state / "run" / "postgres.log")
    rows: list[tuple[str, int | None, int | None]] = [
        ("postgres", postgres.pid(), PORTS["postgres"])
    ]
    rows += [(s.name, s.pid(), s.port) for s in dev_services(state, env)]
    all_up = True
    for name, pid, port in rows:
        where = f" on port {port}" if port else ""
        if pid:
            print(f"{name:12} running (pid {pid}){where}")
        else:
            all_up = False
            print(f"{name:12} stopped")
    return 0 if all_up else 3


def cmd_test(args: argparse.Namespace) -> int:
    state = STATE / "test"
    shutil.rmtree(state, ignore_errors=True)
    run = state / "run"
    postgres = Postgres(
        state / "postgres", TEST_PORTS["postgres"], run / "postgres.log", ephemeral=True
    )
    redis = redis_service(
        run_dir=run, data_dir=state / "redis", port=TEST_PORTS["redis"], persistent=False
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "settings.base",
        "SECRET_KEY": "test-only-" + secrets.token_urlsafe(32),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SITE_URL": "http://testserver",
        "DATABASE_URL": postgres.url("mailer"),
        "REDIS_URL": f"redis://127.0.0.1:{TEST_PORTS['redis']}/0",
        "SMTP_URL": "smtp://127.0.0.1:2599",
        "DEFAULT_FROM_EMAIL": "Tests <tests@example.com>",
        "FLOWER_BASIC_AUTH": "flower:test-password",
        "ANYMAIL_WEBHOOK_SECRET": "hooks:test-secret",
        "MAILGUN_WEBHOOK_SIGNING_KEY": "test-signing-key",
        "STATIC_ROOT": str(state / "static"),
        "MEDIA_ROOT": str(state / "media"),
        # The fault suite restarts these servers mid-campaign (tests/faults/servers.py).
        "TEST_SERVERS_DIR": str(state),
    }
    venv_bin = Path(PYTHON).parent
    steps = [
        ("ruff check", [str(venv_bin / "ruff"), "check", "."]),
        ("ruff format", [str(venv_bin / "ruff"), "format", "--check", "."]),
        ("mypy", [str(venv_bin / "mypy")]),
        # The one-way layers and no cycles (pyproject.toml, tool.importlinter).
        ("import contract", [str(venv_bin / "lint-imports")]),
        ("pytest", [PYTHON, "-m", "pytest", *args.pytest_args]),
    ]
    results: list[tuple[str, int, float]] = []
    ensure_test_packages()
    try:
        print(postgres.start())
        print(redis.start())
        wait_for_redis(TEST_PORTS["redis"], redis.log)
        for name, argv in steps:
            print(f"\n== {name}: {' '.join(argv[1:]) if name == 'pytest' else ''}", flush=True)
            started = time.monotonic()
            code = subprocess.run(argv, cwd=ROOT, env={**os.environ, **env}).returncode
            results.append((name, code, time.monotonic() - started))
    finally:
        print(redis.stop())
        print(postgres.stop())
    print()
    for name, code, seconds in results:
        print(f"{name:16} {'ok' if code == 0 else f'FAILED ({code})':12} {seconds:6.1f} s")
    failed = [name for name, code, _ in results if code != 0]
    if len(results) < len(steps):
        failed.append("setup")
    return 1 if failed else 0


def cmd_messages(_args: argparse.Namespace) -> int:
    """Find the strings to translate (locale/*/django.po) and compile every catalogue."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.base"}
    env.setdefault("SECRET_KEY", "messages-only-" + secrets.token_urlsafe(32))
    env.setdefault("DATABASE_URL", "postgres://localhost:1/none")
    env.setdefault("REDIS_URL", "redis://localhost:1/0")
    os.environ.update(env)
    messages.extract(PYTHON)
    for mo in messages.compile_all():
        print(f"compiled {mo.relative_to(ROOT)}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    return subprocess.run([PYTHON, "-m", "bench", "run", *args.pytest_args], cwd=ROOT).returncode


def main() -> int:
    parser = argparse.ArgumentParser(prog="./dev", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="install and start the whole system with a demo")
    commands.add_parser("down", help="stop everything `up` started")
    commands.add_parser("status", help="say what is running")
    commands.add_parser(
        "test", help="ruff, mypy and the full pytest suite (extra arguments go to pytest)"
    )
    commands.add_parser("bench", help="the benchmarks (extra arguments go to python -m bench run)")
    commands.add_parser("messages", help="find the strings to translate and compile locale/")
    args, extra = parser.parse_known_args()
    if extra and args.command not in ("test", "bench"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra
    handler = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "test": cmd_test,
        "bench": cmd_bench,
        "messages": cmd_messages,
    }
    try:
        return handler[args.command](args)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
