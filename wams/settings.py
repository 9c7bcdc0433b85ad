"""Django settings: wiring only; deploy-specific values come from the environment (wams.env)."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from wams.env import (
    env_bool,
    env_choice,
    env_database,
    env_event_loop,
    env_int,
    env_list,
    env_proxy_ssl_header,
    env_rate,
    env_redis_url,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("WAMS_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", default=False)
_secret = env_str("SECRET_KEY", default="")
if not _secret:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set unless DEBUG=1")
    _secret = "insecure-development-key-only-for-debug"  # noqa: S105 - DEBUG only
SECRET_KEY = _secret
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", ["http://127.0.0.1:8000", "http://localhost:8000"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "csp",
    "wams.grid",
    "wams.pdc",
    "wams.historian",
    "wams.detection",
    "wams.control",
    "wams.simulator",
    "wams.api",
    "dashboards",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "wams.httpsecurity.SiteCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "wams.ratelimit.PageRateLimitMiddleware",  # page and history reads per user (WAMS_PAGE_RATE)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into the lockout page
]

ROOT_URLCONF = "wams.urls"
ASGI_APPLICATION = "wams.asgi.application"

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

DATABASES = {"default": env_database("DATABASE_URL", VAR_DIR / "wams.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One REDIS_URL feeds the channel layer, Celery and the pdc hand-off stream.
# Unset: the embedded mode (in-memory layer, tasks in-process).
REDIS_URL = env_redis_url("REDIS_URL")
EMBEDDED = REDIS_URL is None

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's 5 s socket timeout equals the layer's blocking-pop time: raise it so idle
            # consumers are not dropped.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "capacity": 1500, "expiry": 10},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
# Rate-limit counters live in Redis when there is one (every web process counts against the same
# limit); the embedded single process keeps them in memory.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "wams"}}
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
for _app in ("pdc", "historian", "detection", "control", "simulator", "api"):
    try:
        _schedule = import_module(f"wams.{_app}.schedule")
    except ModuleNotFoundError as _missing:
        if _missing.name != f"wams.{_app}.schedule":
            raise
        continue
    CELERY_BEAT_SCHEDULE.update(_schedule.BEAT_SCHEDULE)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Login lockout (django-axes): the lockout check runs first, then the ordinary model backend.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("WAMS_LOGIN_FAILURE_LIMIT", 10, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("WAMS_LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=7 * 24 * 60))
# "username,ip": an account after N failures from anywhere, and a client address after N failures across
# usernames (password spraying); "username": the account only; "username+ip": only that username from that
# address (nobody elsewhere can lock an operator out). The address is REMOTE_ADDR: behind a reverse proxy that
# is the proxy's, so use "username" there.
AXES_LOCKOUT_PARAMETERS = {
    "username,ip": ["username", "ip_address"],
    "username": ["username"],
    "username+ip": [["username", "ip_address"]],
}[env_choice("WAMS_LOGIN_LOCKOUT_BY", "username,ip", ("username,ip", "username", "username+ip"))]
AXES_RESET_ON_SUCCESS = True  # a successful login clears the count of earlier failures
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the lock ends WAMS_LOGIN_LOCKOUT_MINUTES after it began
AXES_LOCKOUT_CALLABLE = "wams.httpsecurity.lockout_response"
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)  # never a client-supplied X-Forwarded-For

# HTTPS deployments: WAMS_HTTPS=1 turns on secure cookies, HSTS and the redirect to https (the finer switches
# default to it). Off by default so the plain-HTTP demo on 127.0.0.1 keeps working.
WAMS_HTTPS = env_bool("WAMS_HTTPS", default=False)
SESSION_COOKIE_SECURE = env_bool("WAMS_SECURE_COOKIES", default=WAMS_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("WAMS_SSL_REDIRECT", default=WAMS_HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers may probe over plain HTTP
SECURE_HSTS_SECONDS = env_int("WAMS_HSTS_SECONDS", 31_536_000 if WAMS_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("WAMS_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("WAMS_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("WAMS_PROXY_SSL_HEADER")  # e.g. X-Forwarded-Proto from the proxy
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp), in every mode: scripts only from this site's static files (page data
# travels as json_script blocks, which are not executed); Plotly sets inline styles, hence 'unsafe-inline' for
# styles only. SiteCSPMiddleware adds the site's own ws:// or wss:// origin to connect-src.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "connect-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Websockets (wams/websockets.py): open sockets per user (across web processes through Redis when configured).
WAMS_WS_MAX_PER_USER = env_int("WAMS_WS_MAX_PER_USER", 20, minimum=1, maximum=10_000)

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
# Serve straight from static/ and app folders: no collectstatic step before a run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# WAMS behaviour
WAMS_PDC_WAIT_TIME_MS = env_int("WAMS_PDC_WAIT_TIME_MS", 100, minimum=0, maximum=10_000)
WAMS_PDC_SHARD = env_int("WAMS_PDC_SHARD", 0, minimum=0)
WAMS_PDC_SHARDS = env_int("WAMS_PDC_SHARDS", 1, minimum=1)
if WAMS_PDC_SHARD >= WAMS_PDC_SHARDS:
    raise ImproperlyConfigured(f"WAMS_PDC_SHARD={WAMS_PDC_SHARD} must be below WAMS_PDC_SHARDS={WAMS_PDC_SHARDS}")
WAMS_LIVE_RATE_HZ = env_int("WAMS_LIVE_RATE_HZ", 10, minimum=1, maximum=60)
WAMS_PDC_LIVE_PUBLISH_HZ = env_int("WAMS_PDC_LIVE_PUBLISH_HZ", 25, minimum=1, maximum=60)
WAMS_PDC_BLOCK_SECONDS = env_int("WAMS_PDC_BLOCK_SECONDS", 1, minimum=1, maximum=60)
WAMS_PDC_TLS_CA_FILE = env_str("WAMS_PDC_TLS_CA_FILE", "")
WAMS_PDC_EVENT_LOOP = env_event_loop("WAMS_PDC_EVENT_LOOP")  # uvloop (default when installed) or asyncio
WAMS_HISTORIAN_COMPRESSION = env_choice("WAMS_HISTORIAN_COMPRESSION", "zstd", ("zstd", "zlib", "lzma"))
WAMS_HISTORIAN_LOSSLESS = env_bool("WAMS_HISTORIAN_LOSSLESS", default=True)
WAMS_HISTORIAN_RECENT_S = env_int("WAMS_HISTORIAN_RECENT_S", 120, minimum=1, maximum=3600)
WAMS_HISTORIAN_CHUNK_SECONDS = env_int("WAMS_HISTORIAN_CHUNK_SECONDS", 30, minimum=1, maximum=600)
WAMS_HISTORIAN_CLAIM_IDLE_MS = env_int("WAMS_HISTORIAN_CLAIM_IDLE_MS", 30_000, minimum=100)
WAMS_HTTP_PORT = env_int("PORT", 8000, minimum=1, maximum=65535)
WAMS_CONTROL_SELECT_TIMEOUT_S = env_int("WAMS_CONTROL_SELECT_TIMEOUT_S", 30, minimum=1, maximum=600)
WAMS_CONTROL_COMMAND_TIMEOUT_MS = env_int("WAMS_CONTROL_COMMAND_TIMEOUT_MS", 5000, minimum=100, maximum=120_000)
# Abuse limits (wams/ratelimit.py): requests per application token on /api/, control actions per user.
WAMS_API_RATE = env_rate("WAMS_API_RATE", "600/m")
WAMS_CONTROL_RATE = env_rate("WAMS_CONTROL_RATE", "30/m")
WAMS_PAGE_RATE = env_rate("WAMS_PAGE_RATE", "600/m")
# Webhook hosts or networks (CIDR) allowed although private or loopback (wams/api/urlguard.py).
WAMS_WEBHOOK_ALLOW = env_list("WAMS_WEBHOOK_ALLOW", [])
WAMS_EVENT_WINDOW_PRE_S = env_int("WAMS_EVENT_WINDOW_PRE_S", 10, minimum=0, maximum=600)
WAMS_EVENT_WINDOW_POST_S = env_int("WAMS_EVENT_WINDOW_POST_S", 30, minimum=0, maximum=600)
WAMS_OSCILLATION_WINDOW_S = env_int("WAMS_OSCILLATION_WINDOW_S", 120, minimum=30, maximum=600)
# Read budgets (wams/historian/budget.py): every query and export is priced before it decodes anything.
WAMS_QUERY_MAX_SAMPLES = env_int("WAMS_QUERY_MAX_SAMPLES", 20_000_000, minimum=1000)
WAMS_QUERY_MAX_VALUES = env_int("WAMS_QUERY_MAX_VALUES", 1_000_000, minimum=1000)
WAMS_QUERY_MAX_CHANNELS = env_int("WAMS_QUERY_MAX_CHANNELS", 64, minimum=1, maximum=4096)
WAMS_EXPORT_MAX_VALUES = env_int("WAMS_EXPORT_MAX_VALUES", 20_000_000, minimum=1000)
WAMS_QUERY_SLICE_MB = env_int("WAMS_QUERY_SLICE_MB", 8, minimum=1, maximum=1024)
WAMS_QUERY_CONCURRENCY = env_int("WAMS_QUERY_CONCURRENCY", 2, minimum=1, maximum=64)
WAMS_QUERY_WAIT_S = env_int("WAMS_QUERY_WAIT_S", 10, minimum=0, maximum=600)
WAMS_API_MAX_SUBSCRIPTIONS = env_int("WAMS_API_MAX_SUBSCRIPTIONS", 20, minimum=1, maximum=10_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},  # not a line per task run (several a second)
        "axes": {"level": "WARNING"},  # failures and lockouts, not a line per successful login
    },
}
