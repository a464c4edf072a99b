"""Settings for the test suite: the project's settings with test-only defaults."""

import os
import tempfile

# Development branches of the settings (no HTTPS redirect, plain static files); pytest-django
# still runs the tests themselves with DEBUG off.
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-" + "x" * 40)

from clinic.settings import *  # noqa: F403
from clinic.settings import BASE_DIR, DATABASES  # noqa: F401

# Passwords the tests set and check are hashed quickly (tests/hashers.py); the product's own
# hashers follow, so any hash the product makes is still checked.
PASSWORD_HASHERS = [
    "tests.hashers.FewIterationsPBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

# Tests pick the channel layer themselves; the redis-marked ones point it at TEST_REDIS_URL.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
TEST_REDIS_URL = (
    os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
)

# PostgreSQL with two roles (DATABASE_OWNER_URL set, as CI does): the test database is created
# and migrated as the owner role; the tests themselves then run as the application role
# (tests/conftest.py::django_db_setup), as the product does.
TEST_APPLICATION_CREDENTIALS = None
if DATABASE_OWNER:  # noqa: F405
    TEST_APPLICATION_CREDENTIALS = {
        "USER": DATABASES["default"]["USER"],
        "PASSWORD": DATABASES["default"].get("PASSWORD", ""),
    }
    DATABASES["default"]["USER"] = DATABASE_OWNER["USER"]  # noqa: F405
    DATABASES["default"]["PASSWORD"] = DATABASE_OWNER["PASSWORD"]  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: threads and a server process in another process must share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"threshold-test-{os.getpid()}.sqlite3")
    }
