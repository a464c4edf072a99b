"""Production settings refuse SQLite unless the deployment says it is a single small clinic
that accepts what SQLite cannot guarantee (README: SQLite, honestly)."""

import pytest

from tests.test_deployment import ROOT, dockerfile, production_env, run_python

SHOW_DATABASE = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.DATABASES['default']['ENGINE'])"
)


@pytest.mark.parametrize("value", ["", "1", "yes", "true", "single small clinic"])
def test_production_settings_refuse_sqlite_without_the_explicit_opt_in(value):
    result = run_python(["-c", SHOW_DATABASE], production_env(SQLITE_IN_PRODUCTION=value))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SQLITE_IN_PRODUCTION=single-small-clinic" in result.stderr
    assert "append-only" in result.stderr


def test_a_single_small_clinic_that_says_so_runs_on_sqlite_in_production():
    result = run_python(
        ["-c", SHOW_DATABASE], production_env(SQLITE_IN_PRODUCTION="single-small-clinic")
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


def test_sqlite_given_as_a_url_is_refused_too(tmp_path):
    env = production_env(
        SQLITE_IN_PRODUCTION="", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"
    )

    result = run_python(["-c", SHOW_DATABASE], env)

    assert result.returncode != 0
    assert "SQLITE_IN_PRODUCTION" in result.stderr


def test_postgres_in_production_and_sqlite_in_development_need_no_opt_in():
    postgres = production_env(
        SQLITE_IN_PRODUCTION="", DATABASE_URL="postgres://threshold:x@db:5432/threshold"
    )
    development = production_env(SQLITE_IN_PRODUCTION="", DEBUG="1")

    on_postgres = run_python(["-c", SHOW_DATABASE], postgres)
    in_development = run_python(["-c", SHOW_DATABASE], development)

    assert on_postgres.stdout.strip() == "django.db.backends.postgresql", on_postgres.stderr
    assert in_development.stdout.strip() == "django.db.backends.sqlite3", in_development.stderr


def test_the_image_collects_static_files_without_the_sqlite_opt_in():
    # The build runs production settings with no real database: it names one it never uses,
    # rather than telling the image it may run on SQLite.
    collect = next(args for kind, args in dockerfile() if kind == "RUN" and "collectstatic" in args)
    assert "SQLITE_IN_PRODUCTION" not in collect
    assert "DATABASE_URL=postgres://" in collect
    assert "SQLITE_IN_PRODUCTION" not in (ROOT / "Dockerfile").read_text()
