"""Dependencies: the hashed lock files, what installs from them, and the advisory check.

pyproject.toml says which releases the project accepts; the lock files say which it installs,
each file by its hash. `make`, the image and CI install from the locks only, and CI checks the
locks against the known vulnerabilities (README: Dependencies and the lock files).
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.test_deployment import dockerfile

ROOT = Path(__file__).resolve().parent.parent
RUNTIME, DEV, TOOLS = "requirements.lock", "requirements-dev.lock", "requirements-tools.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# The environments one lock must serve: a developer's or CI's 3.11, the image's 3.12
# (python:3.12-slim), and the next Python a deployer may move to.
ENVIRONMENTS = {
    f"{version} linux": {
        "python_version": version,
        "python_full_version": f"{version}.{patch}",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
    }
    for version, patch in (("3.11", 7), ("3.12", 8), ("3.13", 1))
}


def lock(name: str) -> list[tuple[Requirement, list[str]]]:
    """(requirement, sha256 hashes) for each entry of a lock file."""
    entries = []
    text = (ROOT / name).read_text()
    for block in re.split(r"\n(?=\S)", text):
        if not block.strip() or block.startswith("#"):
            continue
        first = block.split("\n", 1)[0].rstrip(" \\")
        entries.append((Requirement(first), re.findall(r"--hash=sha256:([0-9a-f]{64})\b", block)))
    return entries


def installed(name: str, environment: dict) -> dict[str, str]:
    """What a lock installs in an environment: {package: version}; two versions fail."""
    chosen = {}
    for requirement, _hashes in lock(name):
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        package = canonicalize_name(requirement.name)
        (version,) = [spec.version for spec in requirement.specifier]
        assert package not in chosen, f"{name}: {package} twice for {environment}"
        chosen[package] = version
    return chosen


def wanted() -> dict[str, list[str]]:
    """Each lock file, and the pyproject requirements it must satisfy."""
    project = PYPROJECT["project"]
    groups = PYPROJECT["dependency-groups"]
    return {
        RUNTIME: project["dependencies"],
        DEV: project["dependencies"] + project["optional-dependencies"]["dev"] + groups["build"],
        TOOLS: groups["tools"],
    }


def make(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(
        ["make", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


# --- the lock files -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [RUNTIME, DEV, TOOLS])
def test_every_locked_package_is_pinned_to_one_release_with_hashes(name):
    entries = lock(name)
    assert len(entries) > 10
    for requirement, hashes in entries:
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1, requirement
        assert specifiers[0].operator == "==", requirement
        assert not requirement.url, requirement
        assert hashes, f"{name}: {requirement.name} has no hash"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("name", [RUNTIME, DEV, TOOLS])
def test_every_dependency_in_pyproject_is_locked_within_its_range(name, environment):
    env = ENVIRONMENTS[environment]
    chosen = installed(name, env)
    for line in wanted()[name]:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate(env):
            continue
        package = canonicalize_name(requirement.name)
        assert package in chosen, f"{name} lacks {line} on {environment}"
        assert requirement.specifier.contains(chosen[package], prereleases=True), (
            f"{name} has {package}=={chosen[package]}, outside pyproject's {line}"
        )


def test_the_extras_the_project_asks_for_are_locked():
    chosen = installed(RUNTIME, ENVIRONMENTS["3.12 linux"])
    # psycopg[binary]: the compiled driver; uvicorn[standard]: its event loop and websockets.
    assert {"psycopg-binary", "uvloop", "httptools", "websockets"} <= set(chosen)


def test_django_csp_is_a_dependency_and_locked():
    assert "django-csp>=4.0,<5" in PYPROJECT["project"]["dependencies"]
    assert "django-csp" in installed(RUNTIME, ENVIRONMENTS["3.12 linux"])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_development_lock_keeps_the_runtime_locks_versions(environment):
    # What the tests run against is what production installs.
    runtime = installed(RUNTIME, ENVIRONMENTS[environment])
    development = installed(DEV, ENVIRONMENTS[environment])
    assert {package: development.get(package) for package in runtime} == runtime


def test_the_locks_are_written_for_every_python_the_project_supports():
    recipe = make("-n", "-B", "lock").stdout
    compiles = [line for line in recipe.splitlines() if "uv pip compile" in line]
    assert len(compiles) == 3
    minimum = re.search(r"3\.\d+", PYPROJECT["project"]["requires-python"]).group(0)
    for line in compiles:
        assert "--universal" in line
        assert "--generate-hashes" in line
        assert f"--python-version {minimum}" in line


# --- what installs from them ----------------------------------------------------------------


def test_make_install_installs_only_from_the_lock_with_hashes(tmp_path):
    recipe = make("-n", "-B", "install", f"VENV={tmp_path / 'venv'}").stdout
    installs = [line for line in recipe.splitlines() if "pip install" in line]
    assert installs
    for line in installs:
        args = line.split()
        if "-e" in args:
            # The project itself: nothing but its own code, built by the locked setuptools.
            assert {"--no-deps", "--no-build-isolation"} <= set(args), line
        else:
            assert "--require-hashes" in args, line
            assert args[args.index("-r") + 1] == DEV, line
    assert any("-e" in line.split() for line in installs)


def test_a_changed_lock_file_reinstalls_the_venv(tmp_path):
    # Times in the past, one step apart: the stamp newer than everything, then each lock newer.
    start = time.time() - 1000
    for name in ("Makefile", "pyproject.toml", "package.json", "package-lock.json", *wanted()):
        shutil.copy(ROOT / name, tmp_path / name)
        os.utime(tmp_path / name, (start, start))
    stamp = tmp_path / ".venv" / ".installed-stamp"
    stamp.parent.mkdir()
    stamp.touch()
    os.utime(stamp, (start + 10, start + 10))
    assert make("-q", "install", cwd=tmp_path).returncode == 0  # up to date

    for step, name in enumerate((RUNTIME, DEV), start=1):
        changed = start + 100 * step
        os.utime(tmp_path / name, (changed, changed))
        assert make("-q", "install", cwd=tmp_path).returncode == 1, f"{name} changed, no reinstall"
        os.utime(stamp, (changed + 10, changed + 10))
        assert make("-q", "install", cwd=tmp_path).returncode == 0


def test_the_image_installs_the_runtime_lock_with_hashes_and_nothing_else():
    instructions = dockerfile()
    runs = [args for kind, args in instructions if kind == "RUN" and "pip install" in args]
    assert len(runs) == 1
    args = runs[0].split()
    assert "--require-hashes" in args
    assert args[args.index("-r") + 1] == RUNTIME
    # Nothing named beside the lock (no ranges read from pyproject.toml, no extra package).
    assert args[args.index("pip") :] == ["pip", "install", "--require-hashes", "-r", RUNTIME]
    copies = [args for kind, args in instructions if kind == "COPY"]
    assert not any("pyproject.toml" in copy for copy in copies)
    order = [kind for kind, args in instructions if RUNTIME in args]
    assert order == ["COPY", "RUN"]  # the lock is in the image before it installs from it


# --- the advisory check ---------------------------------------------------------------------


def audit_module():
    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ci_audits_every_lock_file_before_the_tests():
    steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make audit" in steps
    assert steps.index("make audit") < next(i for i, s in enumerate(steps) if "make test" in s)
    recipe = make("-n", "-B", "audit").stdout.splitlines()
    audit = next(line for line in recipe if ".ci/audit.py" in line).split()
    every_lock = sorted(path.name for path in ROOT.glob("*.lock"))
    assert sorted(audit[audit.index(".ci/audit.py") + 1 :]) == every_lock


def test_the_audit_reads_the_locks_as_they_are_with_hashes():
    args = audit_module().command([RUNTIME, DEV], ["PYSEC-1"], "out.json")
    assert {"--require-hashes", "--disable-pip"} <= set(args)
    assert args[args.index("--format") + 1] == "json"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--requirement"] == [RUNTIME, DEV]
    assert args[args.index("--ignore-vuln") + 1] == "PYSEC-1"


VULNERABLE = {
    "dependencies": [
        {"name": "django", "version": "5.2.19", "vulns": []},
        {
            "name": "sqlparse",
            "version": "0.6.1",
            "vulns": [{"id": "PYSEC-2099-1", "fix_versions": ["0.6.2"], "aliases": ["CVE-2099-1"]}],
        },
    ]
}
UNCHECKED = {
    "dependencies": [
        {"name": "django", "version": "5.2.19", "vulns": []},
        {"name": "sqlparse", "skip_reason": "Dependency not found on PyPI"},
    ]
}
UNREACHABLE = "Traceback...\nrequests.exceptions.ConnectionError: Max retries exceeded\n"


@pytest.mark.parametrize("strict", [False, True])
def test_a_known_vulnerability_fails_the_audit_and_names_the_fix(strict):
    code, lines = audit_module().verdict(VULNERABLE, "", strict)
    assert code == 1
    assert any("sqlparse 0.6.1" in line and "0.6.2" in line for line in lines)


def test_a_clean_report_passes():
    code, lines = audit_module().verdict({"dependencies": VULNERABLE["dependencies"][:1]}, "", True)
    assert code == 0
    assert lines[-1] == "1 package(s) checked, 0 with known vulnerabilities."


@pytest.mark.parametrize(("report", "stderr"), [(UNCHECKED, ""), (None, UNREACHABLE)])
def test_an_advisory_service_that_cannot_answer_is_reported_and_fails_only_when_strict(
    report, stderr
):
    audit = audit_module()
    code, lines = audit.verdict(report, stderr, strict=False)
    assert code == 0
    assert any(line.startswith("NOT CHECKED") for line in lines)
    assert audit.verdict(report, stderr, strict=True)[0] == 1


def test_an_audit_that_breaks_for_another_reason_fails():
    stderr = "ERROR:pip_audit._cli:requirement django==5.2.19 does not contain a hash\n"
    code, lines = audit_module().verdict(None, stderr, strict=False)
    assert code == 1
    assert "does not contain a hash" in lines[0]


class _Advisories(BaseHTTPRequestHandler):
    """An OSV query endpoint that knows one advisory, for one locked package."""

    def do_POST(self):
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer = {}
        if query["package"]["name"] == "sqlparse":
            event = [{"introduced": "0"}, {"fixed": "999"}]
            affected = {"package": {"name": "sqlparse", "ecosystem": "PyPI"}}
            affected["ranges"] = [{"type": "ECOSYSTEM", "events": event}]
            answer = {"vulns": [{"id": "PYSEC-2099-7", "details": "test", "affected": [affected]}]}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_audit_fails_on_a_vulnerable_locked_package_end_to_end():
    # The real pip-audit from the tools' venv (made by `make audit`, which CI runs before the
    # tests), asking a local advisory service that knows one advisory for a locked package.
    python = ROOT / ".venv-tools" / "bin" / "python"
    if not python.exists():
        pytest.skip("no .venv-tools: run `make audit` once")
    server = HTTPServer(("127.0.0.1", 0), _Advisories)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "AUDIT_SERVICE": "osv",
        "AUDIT_OSV_URL": f"http://127.0.0.1:{server.server_port}/v1/query",
        "AUDIT_STRICT": "1",
    }
    try:
        run = [str(python), ".ci/audit.py", RUNTIME]
        result = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        accepted = subprocess.run(
            run,
            cwd=ROOT,
            env={**env, "AUDIT_IGNORE": "PYSEC-2099-7"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "VULNERABLE: sqlparse" in result.stdout
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
