"""Django settings, read from the environment (see settings/environment.py and .env.example)."""

from __future__ import annotations

from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path

from django.utils.csp import CSP
from kombu import Queue
from psycopg_pool import ConnectionPool

from settings import hooks, logformat, queues, storage
from settings.environment import (
    read_bool,
    read_choice,
    read_db_url,
    read_email_url,
    read_int,
    read_list,
    read_redis_url,
    read_secret,
    read_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = read_bool("DEBUG", "Django debug pages; never true in production.", default=False)
_KEY_HELP = "Signs sessions and the links in emails; a long random string, kept secret."
# A development machine may run with the example key; anything else needs a real one.
SECRET_KEY = (
    read_str("SECRET_KEY", _KEY_HELP)
    if DEBUG
    else read_secret("SECRET_KEY", _KEY_HELP, min_length=50)
)
ALLOWED_HOSTS = read_list(
    "ALLOWED_HOSTS", "Host names the web app answers to, comma-separated.", default="localhost"
)
CSRF_TRUSTED_ORIGINS = read_list(
    "CSRF_TRUSTED_ORIGINS",
    "Origins (scheme://host) allowed to post forms when behind a proxy, comma-separated.",
)
SITE_URL = read_str(
    "SITE_URL",
    "Public base URL of the web app, used for links in emails (unsubscribe, tracking).",
    default="http://localhost:8000",
).rstrip("/")

# Served over HTTPS (SITE_URL says so): cookies only travel encrypted.
_https = SITE_URL.startswith("https://")
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_HSTS_SECONDS = read_int(
    "SECURE_HSTS_SECONDS",
    "Seconds browsers must use HTTPS only (Strict-Transport-Security); 0 sends no header. "
    "Set it once the site is served over HTTPS for good, e.g. 31536000.",
    default=0,
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = read_bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "HSTS for every subdomain too (only if all of them are served over HTTPS).",
    default=False,
)
SECURE_HSTS_PRELOAD = read_bool(
    "SECURE_HSTS_PRELOAD",
    "Allow the domain on browsers' HSTS preload list (needs subdomains too).",
    default=False,
)
# Behind a proxy that terminates TLS and says so in X-Forwarded-Proto.
if read_bool(
    "TRUST_X_FORWARDED_PROTO",
    "Trust the proxy's X-Forwarded-Proto header to tell HTTPS requests (only behind a proxy "
    "that sets it).",
    default=False,
):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = read_bool(
    "SECURE_SSL_REDIRECT",
    "Redirect plain HTTP requests to HTTPS (usually the proxy's job).",
    default=False,
)
# The health check and the metrics scrape come over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

INSTALLED_APPS = [
    # django.contrib.admin, with the workbench's admin site (dashboard, analytics, sections)
    "workbench.apps.WorkbenchAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # ArrayField: the folded ledger (mailer.folding)
    "subscribers",
    "campaigns",
    "mailer",
    # django-anymail (providers' bounce webhooks, settings/urls.py) is not an installed app:
    # its app only registers two system checks, and loading it loads requests into every
    # process, senders included (5 MB each). mailer.apps registers those checks itself.
    "auditlog",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "guardian",
    "automations",
    "webhooks",
    "api",
    "workbench",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy of every page (SECURE_CSP below); a view that sets its own
    # (the view-in-browser page: a sandbox) keeps it.
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Names the logged-in user as the actor of every audit trail entry (settings/audit.py).
    "auditlog.middleware.AuditlogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Two-factor login (mailer/two_factor.py).
    "django_otp.middleware.OTPMiddleware",
    "mailer.two_factor.RequireTwoFactor",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Locks out repeated failed logins (django-axes); last, as its documentation asks.
    "axes.middleware.AxesMiddleware",
]

# Scripts only from this site's own static files: no inline script, no handler attribute, no
# third-party host. Styles may be inline (the admin's and the campaigns' own style attributes);
# images may come from anywhere, as a campaign's do in the preview.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": ["*", "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "frame-src": [CSP.SELF],
    "frame-ancestors": [CSP.SELF],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Per-list permissions (subscribers/access.py).
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # django-guardian: no permissions for visitors, so no such user
# After this many failed logins from one client address, or for one username, logins from it
# (for it) are refused for a while; a successful login resets the count. A username locked
# by guesses from many addresses is the price of stopping a distributed guess; an Admin
# lifts a lock under Axes → Access attempts, or with `manage.py axes_reset`.
API_RATE_LIMIT = read_int("API_RATE_LIMIT", "Requests a minute per API user (then 429).", 600, 1)

AXES_FAILURE_LIMIT = read_int(
    "LOGIN_FAILURE_LIMIT", "Failed admin logins before a lockout, per address and per user.", 10, 1
)
AXES_COOLOFF_TIME = timedelta(
    minutes=read_int("LOGIN_LOCKOUT_MINUTES", "How long a login lockout lasts, in minutes.", 15, 1)
)
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
OTP_REQUIRED_FOR_SUPERUSERS = read_bool(
    "OTP_REQUIRED_FOR_SUPERUSERS",
    "Superusers must log in to the admin with an authenticator code as well (true/false).",
    False,
)
OTP_TOTP_ISSUER = "Campaign mailer"

ROOT_URLCONF = "settings.urls"
WSGI_APPLICATION = "settings.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

_database = read_db_url(
    "DATABASE_URL", "PostgreSQL connection URL: postgres://user:password@host:port/dbname."
)
_pool_min = read_int(
    "DB_POOL_MIN_SIZE", "Connections each process keeps open in its pool.", default=1
)
_pool_max = read_int(
    "DB_POOL_MAX_SIZE",
    "Most connections one process may open (psycopg pool); 0 turns pooling off.",
    default=4,
)
if _pool_max:
    _database.setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(_pool_min, _pool_max),
        "max_size": _pool_max,
        "timeout": 10,
        # A connection is checked (one empty query) as it leaves the pool: after PostgreSQL
        # restarts, the pool's old connections are all dead and would fail the next statement.
        "check": ConnectionPool.check_connection,
    }
DATABASES = {"default": _database}
DB_POOL_MAX_SIZE = _pool_max
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The admin in each user's language, the public pages in their list's (./dev messages).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = read_str("TIME_ZONE", "Time zone shown in the admin.", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = read_str("STATIC_ROOT", "Folder collectstatic fills.", default="staticfiles")
# The API docs' scripts, found without importing django-ninja (and pydantic) in every worker.
STATICFILES_DIRS = [Path(str(find_spec("ninja").origin)).parent / "static"]  # type: ignore[union-attr]
# Uploaded files: private uploads in MEDIA_ROOT, the public media library (settings/storage.py).
MEDIA_ROOT = storage.MEDIA_ROOT
MEDIA_URL = "media/"
MEDIA_MAX_BYTES, ATTACHMENTS_MAX_BYTES = storage.MEDIA_MAX_BYTES, storage.ATTACHMENTS_MAX_BYTES
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "library": storage.LIBRARY,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Redis and Celery -----------------------------------------------------------------------

REDIS_URL = read_redis_url(
    "REDIS_URL", "Redis URL: the Celery broker and the rate-limit token buckets."
)
# Every key the project writes (buckets, leases, locks, broker queues) starts with this, so
# several installations, or parallel test runs, can share one Redis server.
SUBSCRIBE_POW_MAX_NUMBER = read_int(
    "SUBSCRIBE_POW_MAX_NUMBER",
    "Difficulty of the subscribe form's proof-of-work: a browser tries about half this many "
    "hashes once per post (50000: a fraction of a second).",
    50_000,
    1_000,
)
IMPORT_MAX_MB = read_int(
    "IMPORT_MAX_MB", "The largest subscriber file an import accepts, in megabytes.", 500, 1
)
REDIS_KEY_PREFIX = read_str(
    "REDIS_KEY_PREFIX", "Prefix of every Redis key the project writes.", default="mailer"
)

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A task taken by a worker that dies is handed out again after this long. It must exceed
    # the longest task (send batches are cut off at CELERY_TASK_TIME_LIMIT) or a slow but
    # healthy task would be handed to a second worker while the first still runs it.
    "visibility_timeout": 3600,
    "global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:",
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
# Batches are long and I/O-bound: a worker process reserves one task at a time, so a batch
# waits in the shared queue (where any free process can take it) rather than behind another
# batch in one process's prefetch buffer. Acknowledging after the task finishes means a task
# lost with its worker is handed out again; every task here is safe to run twice, because
# batches claim their rows in the database rather than trusting the message.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 330
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Flower and the status page follow tasks through events.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True

MAILER_QUEUES = ("dispatch", "send", "transactional", "default")
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in MAILER_QUEUES]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {task: {"queue": queue} for task, queue in queues.ROUTES.items()}
CELERY_BEAT_SCHEDULE = dict(queues.BEAT_SCHEDULE)

# A finished campaign's ledger rows are folded into compressed blocks this long after its
# report's figures were kept (mailer.folding). Bounces tie to their campaign within 14 days
# from the hot rows and from the folded ones alike.
LEDGER_FOLD_AFTER_DAYS = read_int(
    "LEDGER_FOLD_AFTER_DAYS",
    "Days after a campaign finishes before its ledger rows are folded into compact blocks.",
    30,
)

# --- Mail -----------------------------------------------------------------------------------

_smtp = read_email_url(
    "SMTP_URL",
    "Default SMTP server, used when no SMTP server is configured in the admin: "
    "smtp://user:password@host:port, smtp+tls:// for STARTTLS, smtp+ssl:// for TLS.",
    default="smtp://localhost:25",
)
MAILER_DEFAULT_SMTP = {
    "host": _smtp["EMAIL_HOST"],
    "port": int(_smtp.get("EMAIL_PORT") or 25),
    "username": _smtp.get("EMAIL_HOST_USER") or "",
    "password": _smtp.get("EMAIL_HOST_PASSWORD") or "",
    "security": "tls"
    if _smtp.get("EMAIL_USE_SSL")
    else "starttls"
    if _smtp.get("EMAIL_USE_TLS")
    else "none",
}
DEFAULT_FROM_EMAIL = read_str(
    "DEFAULT_FROM_EMAIL",
    "From address of campaigns that do not set one, e.g. 'Shop <news@shop.example>'.",
    default="webmaster@localhost",
)
# Django's own mail (password resets) is sent as transactional messages (mailer.tx).
MAILERS = {"default": {"BACKEND": "mailer.email_backend.TransactionalBackend"}}
FLOWER_BASIC_AUTH = read_str(
    "FLOWER_BASIC_AUTH", "Flower's login as user:password (required by Flower).", default=""
)
METRICS_TOKEN = read_secret(
    "METRICS_TOKEN",
    "Bearer token for /metrics and /admin/status.json (Prometheus, scripts); empty: only "
    "logged-in staff may read them.",
    default="",
)

# --- Bounces, complaints and outgoing webhooks (settings/hooks.py) -------------------------

ANYMAIL = hooks.ANYMAIL
BOUNCE_WEBHOOK_TOKEN = hooks.BOUNCE_WEBHOOK_TOKEN
WEBHOOKS_ALLOW_PRIVATE_URLS = hooks.WEBHOOKS_ALLOW_PRIVATE_URLS
BOUNCE_MAILBOX, BOUNCE_MAILBOX_KEEP_IN = hooks.BOUNCE_MAILBOX, hooks.BOUNCE_MAILBOX_KEEP_IN
CELERY_BEAT_SCHEDULE.update(hooks.MAILBOX_BEAT)

# --- Logging --------------------------------------------------------------------------------

LOG_LEVEL = read_choice(
    "LOG_LEVEL", "Level of the project's logs.", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")
)
LOG_FORMAT = read_choice(
    "LOG_FORMAT", "logfmt (key=value) or json lines.", "logfmt", ("logfmt", "json")
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "settings.logformat.formatter", "style": LOG_FORMAT}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "loggers": {
        "mailer": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "campaigns": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "subscribers": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
}
# Celery keeps the logging configured above instead of installing its own handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
logformat.configure()
