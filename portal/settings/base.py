"""Core Django settings, read from the environment.

The defaults are the embedded ones (SQLite, debug on, a throwaway secret key) so a
laptop runs with nothing set. `DESKOPS_PRODUCTION=true` turns the defaults off:
the secret key and allowed hosts must then come from the environment or the
process refuses to start.
"""

import ipaddress
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .env import BASE_DIR, VAR_DIR, env

PRODUCTION = env.bool("DESKOPS_PRODUCTION", default=False)
DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)

if PRODUCTION:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DESKOPS_PRODUCTION=true.")
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when DESKOPS_PRODUCTION=true.")
else:
    SECRET_KEY = env.str(
        "DJANGO_SECRET_KEY", default="insecure-development-key-do-not-use-in-production"
    )
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"])

CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# The portal's address as operators reach it, for links in notifications.
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "channels",
    "django_celery_beat",
    "portal",
    "cloud",
    "pools",
    "allocation",
    "maintenance",
    "monitoring",
    "simulation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.RequestIdMiddleware",
    "portal.middleware.RejectNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

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
                "portal.context_processors.role",
            ],
        },
    },
]

# SQLite by default. Web, worker and beat write to the same file at once, so the
# connection runs in WAL mode, takes the write lock when a transaction starts
# (IMMEDIATE: no deadlock between two readers that both want to write) and waits
# for it instead of failing with "database is locked".
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'deskops.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "monitoring:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DESKOPS_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Outside production whitenoise serves straight from the app folders, so the demo
# needs no collectstatic step.
WHITENOISE_USE_FINDERS = not PRODUCTION

# Staff sessions end when the browser closes or after SESSION_COOKIE_AGE seconds.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Plain HTTP is redirected, but not the probes a load balancer sends.
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # HTTP Basic for scripts (over HTTPS in production), browser sessions for the
    # portal's pages. Basic goes first so an unauthenticated call gets a 401 with
    # a WWW-Authenticate header rather than a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.BasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every ops endpoint checks the caller's role (portal/roles.py); the
    # thin-client API opts out explicitly.
    "DEFAULT_PERMISSION_CLASSES": ["portal.roles.RolePermission"],
    "EXCEPTION_HANDLER": "portal.api.exceptions.json_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DeskOps API",
    "DESCRIPTION": "Operations API and thin-client broker of a DeskOps desktop cloud.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its browsable docs are for staff only, and the docs' assets
    # come from the installed sidecar package rather than a CDN.
    "SERVE_PERMISSIONS": ["portal.roles.RolePermission"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models share field names with different choices; name each enum.
    "ENUM_NAME_OVERRIDES": {
        "BindingPolicyEnum": "allocation.choices.BindingPolicy",
        "HostStateEnum": "cloud.choices.HostState",
        "IncidentKindEnum": "monitoring.choices.IncidentKind",
        "IncidentStatusEnum": "monitoring.choices.IncidentStatus",
        "VMStateEnum": "pools.choices.VMState",
    },
}

# The thin-client contract: how long a thin client waits before asking again when
# no desktop is ready, and how long a SPICE password stays valid.
THIN_CLIENT_RETRY_AFTER = env.int("THIN_CLIENT_RETRY_AFTER", default=10)
SPICE_TICKET_TTL = env.int("SPICE_TICKET_TTL", default=120)

# The CPU scheduling section of a host's page: seconds of host time simulated per
# variant (short, so the first view stays quick) and how long the result is cached.
SCHEDULER_SIM_SECONDS = env.float("SCHEDULER_SIM_SECONDS", default=5.0)
SCHEDULER_SIM_CACHE_SECONDS = env.int("SCHEDULER_SIM_CACHE_SECONDS", default=3600)

# "text" for people, "json" for a log shipper: one JSON object per line, with the
# request id (portal/logging.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text").lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'text' or 'json', not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "portal.logging.JsonFormatter"},
    },
    "filters": {"request_id": {"()": "portal.logging.RequestIdFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("DESKOPS_LOG_LEVEL", default="INFO")},
}

# Failed thin-client logins allowed per user name and per terminal within the window
# (seconds) before further attempts are refused with 429.
LOGIN_FAILURES_PER_USER = env.int("LOGIN_FAILURES_PER_USER", default=5)
LOGIN_FAILURES_PER_TERMINAL = env.int("LOGIN_FAILURES_PER_TERMINAL", default=20)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=300)
# A floating desktop whose thin client has not been heard from for this long is
# released and recycled.
FLOATING_IDLE_TIMEOUT = env.int("FLOATING_IDLE_TIMEOUT", default=900)

# The cache holds login failure counts; set CACHE_URL (e.g. redis://…) when several
# web processes serve thin clients so they share one count.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://deskops")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # The same cache, without a new Redis client object per operation (portal/cache.py).
    CACHES["default"]["BACKEND"] = "portal.cache.RedisCache"
# Largest thin-client request body accepted, in bytes.
THIN_CLIENT_MAX_BODY = env.int("THIN_CLIENT_MAX_BODY", default=4096)

# Networks allowed to scrape /metrics.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])

# Reverse proxies (addresses or networks) whose X-Forwarded-For is believed: the
# client's address is then the right-most hop that is not one of them
# (portal/client_ip.py). Empty: every request's address is its peer's.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES holds {_proxy!r}, which is not an address or network."
        ) from _exc
