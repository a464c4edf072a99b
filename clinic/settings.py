"""Settings for Threshold.

With no configuration at all the project runs on SQLite and the in-memory channel layer, so a
bare machine can try it. Real deployments set DATABASE_URL (PostgreSQL) and REDIS_URL
(channels-redis) so that several ASGI workers share one database and one channel layer.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_positive_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise ImproperlyConfigured(f"{name} must be a whole number of at least 1.")
    return int(value)


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=1 for local development).")
    SECRET_KEY = "django-insecure-local-development-only-never-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "clinic.apps.ThresholdAdminConfig",  # Django's admin, scoped to directed sites
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "clinic",
    "queues",
    "visits",
    "releases",
    "django_tables2",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header on every response (settings below).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the database: a NUL character anywhere in a request is refused.
    "clinic.bad_input.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # After authentication: the history of changes records who made each change.
    "clinic.history.HistoryActorMiddleware",
    # After authentication: every request the person made keeps the session alive for their
    # idle time; background ones do not (clinic/idle.py).
    "clinic.idle.IdleSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clinic.urls"

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
                "clinic.context_processors.current_site",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "clinic.asgi.application"

# --- Database -------------------------------------------------------------------------------
# SQLite by default. IMMEDIATE transactions make every atomic block take SQLite's write lock
# when it starts, so two "call next" presses are serialised instead of one failing half-way.
# Pages run on HTTP_THREADS threads per server process (clinic/http_threads.py), each keeping
# its connection for DB_CONN_MAX_AGE seconds: a process holds at most that many connections
# for pages, and a request does not pay for a new one (about 10 ms of PostgreSQL's CPU).
# Connections are checked before each request that uses one (conn_health_checks).
HTTP_THREADS = env_positive_int("HTTP_THREADS", 4)
SQLITE_PATH = os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "300")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
elif env_bool("DB_PREPARED_STATEMENTS", True):
    # PostgreSQL: parameters bound by the server, and a statement a kept connection has run
    # twice is prepared, so PostgreSQL plans it once per connection instead of once per
    # request (the site check and the board's rows took 4-5 ms of planning each time). Set
    # DB_PREPARED_STATEMENTS=0 behind a pooler that cannot keep prepared statements
    # (PgBouncer in transaction mode without max_prepared_statements).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": 2}
    )
# On SQLite the database triggers (append-only audit tables, sealed consents) stop mistakes in
# code, but anything that can write the file can remove them; only PostgreSQL, with an
# application role that does not own the tables, keeps them out of the application's reach.
# So production refuses SQLite unless the deployment says, in these words, that it is a single
# small clinic that accepts this (README, "SQLite, honestly").
SQLITE_IN_PRODUCTION = os.environ.get("SQLITE_IN_PRODUCTION", "")
if (
    DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    and not DEBUG
    and SQLITE_IN_PRODUCTION != "single-small-clinic"
):
    raise ImproperlyConfigured(
        "DEBUG is off and the database is SQLite (no DATABASE_URL, or a sqlite:// one). On "
        "SQLite the triggers that keep the audit tables append-only can be removed by anything "
        "that can write the database file; PostgreSQL keeps them out of the application's "
        "reach. Set DATABASE_URL to a PostgreSQL database, or, for a single small clinic that "
        "accepts this, set SQLITE_IN_PRODUCTION=single-small-clinic (README: SQLite, honestly)"
        + (f"; it is set to {SQLITE_IN_PRODUCTION!r}." if SQLITE_IN_PRODUCTION else ".")
    )
# PostgreSQL with two roles (clinic/db_roles.py): DATABASE_URL is the application's role, which
# owns nothing; DATABASE_OWNER_URL, the same database as the role that owns the schema, is used
# only by migrations and the commands that maintain tables. Without it: one role for everything.
DATABASE_OWNER = None
DATABASE_APPLICATION_ROLE = ""
if os.environ.get("DATABASE_OWNER_URL"):
    _owner = dj_database_url.parse(os.environ["DATABASE_OWNER_URL"])
    _default = DATABASES["default"]
    if _default["ENGINE"] != "django.db.backends.postgresql" or any(
        _owner.get(key) != _default.get(key) for key in ("ENGINE", "NAME", "HOST", "PORT")
    ):
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL must name the same PostgreSQL database as DATABASE_URL, as "
            "another role (the one that owns the schema)."
        )
    if _owner["USER"] == _default["USER"]:
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL and DATABASE_URL must be two roles: the application's must not "
            "own the tables."
        )
    DATABASE_OWNER = {"USER": _owner["USER"], "PASSWORD": _owner.get("PASSWORD", "")}
    DATABASE_APPLICATION_ROLE = _default["USER"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Channels -------------------------------------------------------------------------------
def redis_channel_layer(url: str) -> dict:
    """channels-redis on `url`.

    channels-redis waits for messages with a 5-second blocking BZPOPMIN; redis-py 8 also gives
    every read a 5-second socket timeout by default, so idle sockets would fail with
    TimeoutError every few seconds (django/channels_redis#422). A read timeout well above the
    BZPOPMIN wait keeps them open and still gives up on a Redis that hangs.
    """
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": url, "socket_timeout": 15, "socket_connect_timeout": 2}],
            "prefix": "threshold",
        },
    }


REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Live sockets (queues/consumers.py): how often each process re-checks that its screens may
# still see what they show (an expired session stops receiving within this), how many frames
# a socket may have waiting before it is dropped as too slow, and how long one send may take.
# LIVE_BUILD_SHARE: under a burst of changes, the most of a process's time spent building one
# site's screens (the changes between builds are coalesced, the last is always sent).
LIVE_RECHECK_SECONDS = float(os.environ.get("LIVE_RECHECK_SECONDS", "10"))
try:
    LIVE_BUILD_SHARE = float(os.environ.get("LIVE_BUILD_SHARE", "0.25"))
except ValueError:
    LIVE_BUILD_SHARE = -1.0
if not 0 < LIVE_BUILD_SHARE <= 1:
    raise ImproperlyConfigured(
        "LIVE_BUILD_SHARE must be a number more than 0 and at most 1 (e.g. 0.25), "
        f"not {os.environ.get('LIVE_BUILD_SHARE')!r}."
    )
LIVE_SEND_BACKLOG = 8
LIVE_SEND_TIMEOUT_SECONDS = 5.0

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out account and address before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Login throttling (django-axes) ------------------------------------------------------------
# Failures are counted per account *and* address together: someone guessing at one account from
# the clinic's shared address locks only that account from there, never the front desk's.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "clinic.throttling.lockout_response"
# The client's address is REMOTE_ADDR, which the server (clinic/serve.py) sets from
# X-Forwarded-For only when the request comes from FORWARDED_ALLOW_IPS (the proxy): no header a
# client sends is trusted here, and clinic/edge.py removes them before Django sees the request.
AXES_CLIENT_IP_CALLABLE = "clinic.throttling.client_ip"
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token", "new_password1", "new_password2"]
# Sign-ins are not logged by axes (clinic.StaffSession tracks sessions); lockouts are, in the
# lockout log (clinic.LockoutEvent).
AXES_DISABLE_ACCESS_LOG = True
# Lockouts are read in the lockout log and unlocked on the staff page, scoped to sites.
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False

# --- Second factor (django-otp, TOTP) ----------------------------------------------------------
OTP_TOTP_ISSUER = os.environ.get("OTP_ISSUER", "Threshold")

# Consent gate: hours within which the privacy officer reviews a medical emergency release.
EMERGENCY_REVIEW_HOURS = int(os.environ.get("EMERGENCY_REVIEW_HOURS", "72"))

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English"))]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploaded files (scanned signed consent forms). Never served as static media: the privacy
# officer's pages serve them after a permission check and an access-log entry.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or BASE_DIR / "media")
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security -------------------------------------------------------------------------------
# Secure by default outside DEBUG. Behind a TLS-terminating proxy, whether a request came over
# HTTPS is decided by the server from X-Forwarded-Proto, and only for requests from the proxy
# (FORWARDED_ALLOW_IPS below); Django reads no forwarded header itself (no
# SECURE_PROXY_SSL_HEADER), so a client that reaches the server directly cannot claim HTTPS.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(12 * 60 * 60)))
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): the pages load scripts, styles, images and fonts from
# this server only, run no inline script, event-handler attribute or inline style, and talk
# only to this server (its pages, and its websockets: 'self' covers ws:/wss: of the same
# host in current browsers; an older one that refuses the socket falls back to polling).
# img-src allows data: for the signature drawn on a consent, kept as a PNG data URL. Browsers
# report what the policy blocked to /csp-report/, which logs it without personal details
# (clinic/csp.py). Nothing here depends on the environment: there is nothing to relax.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        # The route csp_report (clinic/urls.py), written out: the header must not depend on
        # reversing a URL (a test's own URLconf, an error page).
        "report-uri": "/csp-report/",
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    # The healthcheck is probed over plain HTTP from inside the deployment network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz/$", r"^healthz/live/$"]


# --- The server: proxy trust and request limits (clinic/serve.py, clinic/edge.py) -------------
# The addresses whose X-Forwarded-For and X-Forwarded-Proto the server believes: the reverse
# proxy's, comma-separated (addresses or networks). "*" (anyone) is refused outside DEBUG.
FORWARDED_ALLOW_IPS = env_list("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Request bodies. Nobody signed in: a sign-in form or a code, and no files. Signed in: the
# largest form is a visit note of 20,000 characters, up to 180 KB once a script of 3-byte
# characters is form-encoded. Files only where a view says so (clinic.edge.upload_limit).
REQUEST_BODY_MAX_BYTES_ANONYMOUS = 16 * 1024
REQUEST_BODY_MAX_BYTES = 512 * 1024
# A body must arrive within this many seconds and never stall this long (an upload gets its
# own total time, and the same stall limit).
REQUEST_BODY_SECONDS = 10
# Django's own limits agree, for any path that reaches it without clinic/edge.py (tests).
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
DATA_UPLOAD_MAX_NUMBER_FILES = 1
# A screen only ever sends {"type": "sync", "version": n}.
WEBSOCKET_MESSAGE_MAX_BYTES = 1024


# --- Screen lock ------------------------------------------------------------------------------
# Minutes without a key, pointer or touch before a signed-in screen locks and its session ends
# (clinic/idle.py). A person holding several roles at a site gets the shortest of theirs there.
# IDLE_SECONDS, when set, replaces them all (tests and demos). SESSION_COOKIE_AGE above stays
# the longest a sign-in lasts, however active.
IDLE_MINUTES = {
    "front_desk": env_positive_int("IDLE_MINUTES_FRONT_DESK", 5),
    "clinician": env_positive_int("IDLE_MINUTES_CLINICIAN", 5),
    "director": env_positive_int("IDLE_MINUTES_DIRECTOR", 15),
    "privacy_officer": env_positive_int("IDLE_MINUTES_PRIVACY_OFFICER", 15),
}
IDLE_SECONDS = env_positive_int("IDLE_SECONDS", None)

# No name, birth date, phone number or free text in a log line (README: "What the logs
# keep"). Pages never put them in a URL; on top of that clinic.logs drops every query string
# from the loggers that write URLs (uvicorn's access log, runserver's, Django's request
# warnings) and from every handler, whichever command started the server.
LOGGING_CONFIG = "clinic.logs.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_query_strings": {"()": "clinic.logs.DropQueryStrings"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["no_query_strings"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # With DEBUG on, Django logs every SQL statement with its parameters (names typed
        # into a search among them) at DEBUG: never, whatever LOG_LEVEL says.
        "django.db.backends": {"level": "INFO"},
        # django-axes logs the name typed at every failed sign-in, which may be a password
        # typed into the wrong field; lockouts are logged by clinic.throttling instead.
        "axes": {"level": "ERROR"},
    },
}
