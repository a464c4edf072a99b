"""Deployment: docker-compose.yml, the Dockerfile, .env.example and production settings.

There is no Docker engine in CI, so the compose file is parsed and checked for what the
deployment depends on: the services, healthchecks, ports, environment wiring and workers.
"""

import ipaddress
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CLEAN_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}


def production_env(**overrides) -> dict[str, str]:
    """What a real deployment sets, and nothing inherited from the test run (no DATABASE_URL):
    a single small clinic on SQLite, which says so."""
    return {
        **CLEAN_ENV,
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "clinic.example.org",
        "SQLITE_IN_PRODUCTION": "single-small-clinic",
        **overrides,
    }


def run_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


# --- compose file, with compose's own variable interpolation --------------------------------

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


class MissingVariable(Exception):
    pass


def interpolate(value, env: dict[str, str]):
    """${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error} and $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match):
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        present = name in env if op in ("-", "?") else bool(env.get(name))
        if op in (":-", "-") and not present:
            return arg
        if op in (":?", "?") and not present:
            raise MissingVariable(f"{name}: {arg}")
        return env.get(name, "")

    return _VARIABLE.sub(replace, value)


PASSWORDS = {
    "POSTGRES_PASSWORD": "s3cret",
    "THRESHOLD_OWNER_PASSWORD": "0wner",
    "THRESHOLD_APP_PASSWORD": "4pp",
}


def compose(env: dict[str, str] | None = None) -> dict:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return interpolate(raw, PASSWORDS if env is None else env)


def environment_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def command_of(service: dict) -> str:
    command = service["command"]
    return " ".join(command) if isinstance(command, list) else command


def depends_on(service: dict) -> dict:
    value = service.get("depends_on", {})
    return {name: {} for name in value} if isinstance(value, list) else value


def healthcheck_test(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def test_compose_has_the_database_redis_and_web_services():
    services = compose()["services"]
    assert set(services) == {"db", "redis", "web"}
    assert services["db"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["web"]["build"] in (".", {"context": "."})


def test_compose_every_service_has_a_healthcheck_of_the_right_kind():
    services = compose()["services"]
    assert healthcheck_test(services["db"]).startswith("CMD-SHELL pg_isready")
    assert healthcheck_test(services["redis"]) == "CMD redis-cli ping"
    assert "/healthz/" in healthcheck_test(services["web"])


def test_compose_database_lives_in_a_named_volume():
    config = compose()
    volumes = config["services"]["db"]["volumes"]
    named = [v.split(":")[0] for v in volumes if v.endswith(":/var/lib/postgresql/data")]
    assert named
    assert named[0] in config["volumes"]


def test_compose_web_publishes_port_8000_to_this_host_only_and_reads_env_file():
    config = compose()
    web = config["services"]["web"]
    assert [str(p) for p in web["ports"]] == ["127.0.0.1:8000:8000"]
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to everyone"
    env_file = web["env_file"]
    assert ".env" in ([env_file] if isinstance(env_file, str) else env_file)


def default_network() -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Address]:
    (pool,) = compose()["networks"]["default"]["ipam"]["config"]
    return ipaddress.ip_network(pool["subnet"]), ipaddress.ip_address(pool["gateway"])


def test_compose_web_believes_forwarded_headers_only_from_the_gateway_the_proxy_comes_through():
    subnet, gateway = default_network()
    assert gateway in subnet
    assert subnet.is_private

    trusted = environment_of(compose()["services"]["web"])["FORWARDED_ALLOW_IPS"]
    assert trusted.split(",") == [str(gateway)]

    # A deployment whose proxy is elsewhere sets it in .env; compose passes that on.
    moved = compose({**PASSWORDS, "FORWARDED_ALLOW_IPS": "10.1.2.3"})["services"]["web"]
    assert environment_of(moved)["FORWARDED_ALLOW_IPS"] == "10.1.2.3"


def test_env_example_never_believes_everyone_s_forwarded_headers():
    text = (ROOT / ".env.example").read_text()
    settings_lines = re.findall(r"^#?\s*(FORWARDED_ALLOW_IPS)=(.*)$", text, flags=re.MULTILINE)
    assert settings_lines == [("FORWARDED_ALLOW_IPS", "127.0.0.1")]
    # Django never reads a forwarded header itself (the server decides, for the proxy alone).
    assert "SECURE_PROXY_SSL_HEADER=" not in text


def test_compose_web_runs_as_the_application_role_and_migrates_as_the_owner():
    config = compose()
    db_env = environment_of(config["services"]["db"])
    web_env = environment_of(config["services"]["web"])
    app, owner = urlparse(web_env["DATABASE_URL"]), urlparse(web_env["DATABASE_OWNER_URL"])

    for url in (app, owner):
        assert url.scheme in ("postgres", "postgresql")
        assert url.hostname == "db"
        assert url.port in (None, 5432)
        assert url.path.lstrip("/") == db_env["POSTGRES_DB"]
    assert (app.username, app.password) == ("threshold_app", "4pp")
    assert (owner.username, owner.password) == ("threshold_owner", "0wner")
    # Never the image's superuser.
    assert db_env["POSTGRES_USER"] not in (app.username, owner.username)


def test_compose_creates_both_roles_when_the_database_is_first_made():
    db = compose()["services"]["db"]
    mounts = [str(volume) for volume in db["volumes"]]
    assert any(
        m.startswith("./deploy/postgres-roles.sh:/docker-entrypoint-initdb.d/") for m in mounts
    )
    script = (ROOT / "deploy" / "postgres-roles.sh").read_text()
    for role in ("threshold_owner", "threshold_app"):
        assert f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE" in script
    assert 'ALTER DATABASE :"db" OWNER TO threshold_owner' in script
    env = environment_of(db)
    assert env["THRESHOLD_OWNER_PASSWORD"] == "0wner" and env["THRESHOLD_APP_PASSWORD"] == "4pp"


def test_compose_web_redis_url_points_at_the_redis_service():
    url = urlparse(environment_of(compose()["services"]["web"])["REDIS_URL"])
    assert url.scheme == "redis"
    assert url.hostname == "redis"
    assert url.port in (None, 6379)


@pytest.mark.parametrize("missing", sorted(PASSWORDS))
def test_compose_refuses_to_start_without_each_database_password(missing):
    with pytest.raises(MissingVariable, match=missing):
        compose({k: v for k, v in PASSWORDS.items() if k != missing})


def test_compose_web_waits_for_healthy_db_and_redis():
    needs = depends_on(compose()["services"]["web"])
    assert needs == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }


def serve_args(command: str) -> list[str]:
    """The arguments of `python -m clinic.serve` (the launcher: uvicorn with the limits and
    the proxy trust set from settings) in a shell command."""
    words = shlex.split(command)
    start = next(
        i for i in range(len(words)) if words[i : i + 3] == ["python", "-m", "clinic.serve"]
    )
    return words[start + 3 :]


@pytest.mark.parametrize(("env", "workers"), [({}, 3), ({"WEB_CONCURRENCY": "5"}, 5)])
def test_compose_web_migrates_then_serves_asgi_with_several_workers(env, workers):
    command = command_of(compose({**PASSWORDS, **env})["services"]["web"])
    args = serve_args(command)

    assert command.index("manage.py migrate") < command.index("clinic.serve")
    assert "uvicorn" not in command  # never around the launcher's limits
    assert int(args[args.index("--workers") + 1]) == workers > 1
    assert args[args.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert args[args.index("--port") + 1] == "8000"


def test_compose_web_does_not_run_with_debug_or_demo_data():
    web = compose()["services"]["web"]
    assert "seed_demo" not in command_of(web)
    assert environment_of(web).get("DEBUG", "0") in ("0", "false", "")


def test_web_healthcheck_sends_an_allowed_host(tmp_path):
    # Django answers 400 to a Host outside ALLOWED_HOSTS, so the probe must send one. Run the
    # probe's code against a stub that records the request instead of a server.
    test = compose()["services"]["web"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    stub = tmp_path / "urllib_stub"
    (stub / "urllib").mkdir(parents=True)
    (stub / "urllib" / "__init__.py").write_text("")
    (stub / "urllib" / "request.py").write_text(
        "import json\n"
        "class Request:\n"
        "    def __init__(self, url, headers):\n"
        "        self.url, self.headers = url, headers\n"
        "def urlopen(request, timeout):\n"
        "    print(json.dumps({'url': request.url, 'headers': request.headers}))\n"
    )
    env = {**CLEAN_ENV, "PYTHONPATH": str(stub), "ALLOWED_HOSTS": "clinic.example.org,other"}

    result = run_python(["-c", test[3]], env)

    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe == {
        "url": "http://127.0.0.1:8000/healthz/",
        "headers": {"Host": "clinic.example.org"},
    }


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_builds_from_a_python_the_project_supports():
    instructions = dockerfile()
    assert instructions[0][0] == "FROM"
    match = re.match(r"python:(3)\.(\d+)", instructions[0][1])
    assert match
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = re.search(r"3\.(\d+)", pyproject["project"]["requires-python"]).group(1)
    assert int(match.group(2)) >= int(minimum)


def test_dockerfile_installs_dependencies_and_collects_static_files_at_build_time():
    runs = [args for kind, args in dockerfile() if kind == "RUN"]
    assert any("pip install --require-hashes -r requirements.lock" in run for run in runs)
    collect = [run for run in runs if "collectstatic" in run]
    assert len(collect) == 1
    assert "DEBUG=0" in collect[0]
    assert "--noinput" in collect[0]


def test_dockerfile_runs_as_an_unprivileged_user_and_exposes_8000():
    instructions = dockerfile()
    users = [args for kind, args in instructions if kind == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert ("EXPOSE", "8000") in instructions
    cmd = json.loads(next(args for kind, args in instructions if kind == "CMD"))
    assert cmd[:3] == ["python", "-m", "clinic.serve"]
    assert int(cmd[cmd.index("--workers") + 1]) > 1


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", ".git", "db.sqlite3*"):
        assert entry in ignored


def test_static_files_collect_the_way_the_image_builds_them(tmp_path):
    # The manifest storage fails the build on a broken url() in CSS; find that here, not there.
    collect = next(args for kind, args in dockerfile() if kind == "RUN" and "collectstatic" in args)
    build_env = dict(re.findall(r"(\w+)=(\S+)", collect.split("python", 1)[0]))
    code = (
        "import django; from django.conf import settings; django.setup(); "
        f"settings.STATIC_ROOT = {str(tmp_path)!r}; "
        "from django.core.management import call_command; "
        "call_command('collectstatic', interactive=False, verbosity=0)"
    )

    result = run_python(
        ["-c", code], {**CLEAN_ENV, "DJANGO_SETTINGS_MODULE": "clinic.settings", **build_env}
    )

    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    assert {"css/threshold.css", "js/live.js", "js/check-in.js"} <= set(manifest)


# --- .env.example ---------------------------------------------------------------------------


def settings_variables() -> set[str]:
    source = (ROOT / "clinic" / "settings.py").read_text()
    names = set(re.findall(r"os\.environ\.get\(\s*\"(\w+)\"", source))
    names |= set(re.findall(r"env_(?:bool|list|positive_int)\(\s*\"(\w+)\"", source))
    return names


def documented_variables() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_env_example_documents_every_setting_the_project_reads():
    assert {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"} <= (
        settings_variables()
    )
    missing = settings_variables() - documented_variables()
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_env_example_documents_every_variable_compose_interpolates():
    raw = (ROOT / "docker-compose.yml").read_text()
    used = {m.group("name") for m in _VARIABLE.finditer(raw) if m.group("name")}
    assert "POSTGRES_PASSWORD" in used
    assert used <= documented_variables()


def test_env_example_is_a_production_configuration():
    values = dict(
        re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M)
    )
    assert values["DEBUG"] == "0"
    assert "*" not in values["ALLOWED_HOSTS"]
    assert all(o.startswith("https://") for o in values["CSRF_TRUSTED_ORIGINS"].split(","))


# --- production settings --------------------------------------------------------------------


def test_check_deploy_reports_nothing_with_production_settings():
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env()
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert result.stderr == ""


def env_example_values() -> dict[str, str]:
    """The settings .env.example sets (the lines that are not commented out)."""
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, flags=re.MULTILINE))


def test_check_deploy_reports_nothing_with_the_env_example_configuration():
    # What a deployer starts from, on the single-small-clinic SQLite (no database server here).
    env = {
        **production_env(),
        **env_example_values(),
        "SQLITE_IN_PRODUCTION": "single-small-clinic",
    }
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)" in result.stdout


def test_check_deploy_refuses_believing_everyone_s_forwarded_headers():
    result = run_python(
        ["manage.py", "check", "--deploy"], production_env(FORWARDED_ALLOW_IPS="127.0.0.1,*")
    )

    assert result.returncode != 0
    assert "threshold.E001" in result.stderr
    assert "FORWARDED_ALLOW_IPS=*" in result.stderr


def test_check_deploy_would_catch_debug_left_on():
    # The same check really looks: with DEBUG on it fails.
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(DEBUG="1")
    )

    assert result.returncode != 0
    assert "security.W018" in result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = run_python(["manage.py", "check"], production_env(SECRET_KEY=""))

    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


@pytest.mark.parametrize("share", ["0", "1.5", "a quarter"])
def test_a_live_build_share_outside_its_range_is_refused_with_a_clear_message(share):
    result = run_python(["manage.py", "check"], production_env(LIVE_BUILD_SHARE=share))

    assert result.returncode != 0
    assert "LIVE_BUILD_SHARE must be" in result.stderr


def test_production_redirects_to_https_except_the_healthcheck(tmp_path):
    code = (
        "import django; django.setup(); from django.test import Client; "
        "c = Client(HTTP_HOST='clinic.example.org'); "
        "print(c.get('/healthz/').status_code, c.get('/queue/').status_code, "
        "c.get('/queue/')['Location'])"
    )
    env = production_env(SQLITE_PATH=str(tmp_path / "db.sqlite3"), PYTHONWARNINGS="ignore")

    result = run_python(["-c", code], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "301", "https://clinic.example.org/queue/"]


def test_redis_url_selects_the_redis_channel_layer():
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CHANNEL_LAYERS['default']['BACKEND'])"
    )
    with_redis = run_python(["-c", code], production_env(REDIS_URL="redis://redis:6379/0"))
    without = run_python(["-c", code], production_env())

    assert with_redis.stdout.strip() == "channels_redis.core.RedisChannelLayer"
    assert without.stdout.strip() == "channels.layers.InMemoryChannelLayer"


# --- layout ---------------------------------------------------------------------------------


def test_no_top_level_queue_package_shadows_the_standard_library():
    assert not (ROOT / "queue").exists()
    assert not (ROOT / "queue.py").exists()
    import queue

    assert Path(queue.__file__).parent == Path(sysconfig.get_paths()["stdlib"])
