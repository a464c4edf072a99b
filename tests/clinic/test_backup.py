"""Backups and restore: `manage.py backup`, `manage.py restore` (clinic/backup.py).

A backup of a database with real records, restored into a fresh database, must give back every
row of every table, the triggers, on PostgreSQL the owners and grants, and the uploaded files
byte for byte. An archive that does not match its manifest, or a target that is not empty, is
refused before anything is written; a backup that fails leaves nothing that looks like one.
"""

import io
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import tarfile
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from clinic.backup import BackupError, backup_check, backup_create, backup_restore, services
from clinic.db_roles import as_owner
from clinic.models import AccessLog
from releases.gate import release_attempt
from releases.models import Consent, DisclosureLog, Scope
from releases.services.consents import STANDARD_REVOCATION_STATEMENT, consent_record
from releases.services.registry import recipient_add
from reports.synthetic import generate
from tests.factories import PersonFactory, check_in

ROOT = Path(__file__).resolve().parents[2]
NAME = "Maria Quintana-Lopez"
# A scanned signed form: a PDF header, bytes no other test writes, an end marker.
SCAN = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


# --- a clinic with records ---------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def flushable(transactional_db):
    """After the test, let the flush delete consents' purposes and recipients on SQLite (they
    are sealed while their consent exists; see tests/releases/conftest.py)."""
    yield
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = OFF")
            cursor.execute("DELETE FROM releases_consent")
            cursor.execute("PRAGMA foreign_keys = ON")


@pytest.fixture
def records(flushable, media, site, front_desk, clinician, privacy_officer, director):
    """Committed records across the apps: a year of synthetic history (thousands of rows), a
    morning's queue, a consent recorded with a scanned form, a release attempt in the
    append-only disclosure log, an access-log entry."""
    generate(people=120, days=200, seed=11, end=date.today() - timedelta(days=1), force=True)
    person = PersonFactory(site=site, name=NAME, date_of_birth=date(1979, 3, 14))
    for _ in range(3):
        check_in(site=site, by=front_desk)
    check_in(site=site, by=front_desk, person=person)
    provider = recipient_add(
        site=site, by=privacy_officer, organisation="Eastside Clinic", category="treatment_provider"
    )
    police = recipient_add(
        site=site,
        by=privacy_officer,
        organisation="City Police",
        office="Records",
        category="police",
    )
    consent = consent_record(
        person=person,
        site=site,
        by=privacy_officer,
        recipients=[provider],
        purposes=["continuity of care"],
        scope=[Scope.ATTENDANCE],
        revocation_statement=STANDARD_REVOCATION_STATEMENT,
        expires_on=timezone.localdate(timezone=site.tz) + timedelta(days=200),
        signed_by=Consent.SignedBy.PERSON,
        scanned_form=SimpleUploadedFile(f"{NAME} consent.pdf", SCAN),
        signed_on=timezone.localdate(timezone=site.tz),
    )
    release_attempt(
        site=site,
        path="test",
        asked_by=clinician,
        person=person,
        recipient=police,
        purpose="investigation",
        scope=[Scope.ATTENDANCE],
    )
    AccessLog.objects.create(
        user=privacy_officer, site=site, person=person, what="consent", object_id=str(consent.pk)
    )
    assert DisclosureLog.objects.get().decision == "refused"
    return consent


# --- what a database holds, to compare before and after ----------------------------------------


def sqlite_state(path) -> dict:
    db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        schema = sorted(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
        tables = [name for kind, name, _, _ in schema if kind == "table"]
        return {
            "schema": schema,
            "triggers": sorted(
                db.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
            ),
            "rows": {
                table: sorted(repr(row) for row in db.execute(f'SELECT * FROM "{table}"'))  # noqa: S608
                for table in tables
            },
        }
    finally:
        db.close()


def pg_params(name: str) -> dict:
    """Connection parameters for `name` on the test server, as the owner role when there are
    two (creating, dropping and restoring databases is the owner's work)."""
    s = {**connection.settings_dict, **(settings.DATABASE_OWNER or {})}
    params = {"dbname": name, "host": s["HOST"] or None, "port": s["PORT"] or None}
    params |= {"user": s["USER"] or None, "password": s["PASSWORD"] or None}
    return {key: value for key, value in params.items() if value}


def pg_state(name: str) -> dict:
    import psycopg
    from psycopg import sql

    with psycopg.connect(**pg_params(name)) as db:
        tables = db.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        rows = {
            f"{schema}.{table}": sorted(
                row
                for (row,) in db.execute(
                    sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, table))
                )
            )
            for schema, table in tables
        }
        return {
            "rows": rows,
            "triggers": sorted(
                db.execute(
                    "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid), tgenabled "
                    "FROM pg_trigger WHERE NOT tgisinternal"
                ).fetchall()
            ),
            "grants": sorted(
                db.execute(
                    "SELECT grantor, grantee, table_schema, table_name, privilege_type, "
                    "is_grantable, with_hierarchy FROM information_schema.role_table_grants "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                ).fetchall()
            ),
            "column_grants": sorted(
                db.execute(
                    "SELECT grantor, grantee, table_name, column_name, privilege_type "
                    "FROM information_schema.column_privileges WHERE table_schema = 'public' "
                    "AND grantee <> grantor"
                ).fetchall()
            ),
            "relations": sorted(
                db.execute(
                    "SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), "
                    "coalesce(c.relacl, acldefault('r'::\"char\", c.relowner))::text "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
                ).fetchall()
            ),
            "functions": sorted(
                db.execute(
                    "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), "
                    "pg_get_userbyid(p.proowner), p.proacl::text FROM pg_proc p "
                    "JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
                ).fetchall()
            ),
            "default_privileges": sorted(
                db.execute("SELECT defaclobjtype, defaclacl::text FROM pg_default_acl").fetchall()
            ),
            "sequences": sorted(
                db.execute("SELECT sequencename, last_value FROM pg_sequences").fetchall()
            ),
            # Not the definitions' text: PostgreSQL prints a partial index's `IN (...)` back as
            # `= ANY (ARRAY[...])` once it has been through a dump, with the same meaning. And
            # columns by name: a restore renumbers them where one was dropped.
            "indexes": sorted(
                db.execute(
                    "SELECT c.relname, t.relname, i.indisunique, i.indisprimary, "
                    "(SELECT array_agg(a.attname ORDER BY k.n) "
                    " FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a "
                    " ON a.attrelid = i.indrelid AND a.attnum = k.attnum), "
                    "i.indpred IS NOT NULL FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
                    "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'"
                ).fetchall()
            ),
        }


def database_state() -> dict:
    """The state of the test database itself."""
    if connection.vendor == "sqlite":
        return sqlite_state(connection.settings_dict["NAME"])
    return pg_state(connection.settings_dict["NAME"])


# --- fresh databases to restore into ---------------------------------------------------------


def restore_database_name() -> str:
    # Named after the test database's own name (pytest-django's "test_" prefix taken off), so
    # it sits beside it: wt_backup -> wt_backup_restore_<random>.
    base = connection.settings_dict["NAME"].removeprefix("test_")
    return f"{base}_restore_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def fresh_database(tmp_path):
    """A Django DATABASES entry for a new, empty database of the engine under test, and its
    URL; a PostgreSQL one is dropped afterwards."""
    if connection.vendor == "sqlite":
        path = tmp_path / "restored" / "db.sqlite3"
        yield {**connection.settings_dict, "NAME": str(path)}, f"sqlite:///{path}"
        return
    import psycopg
    from psycopg import sql

    name = restore_database_name()
    with psycopg.connect(**pg_params(connection.settings_dict["NAME"]), autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        s = {**connection.settings_dict, **(settings.DATABASE_OWNER or {})}
        auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "") + "@"
        url = f"postgres://{auth}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{name}"
        yield {**s, "NAME": name}, url
    finally:
        with psycopg.connect(**pg_params(connection.settings_dict["NAME"]), autocommit=True) as db:
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def pg_grants_of_our_own():
    """Grants to roles that exist on every server (so the test creates no roles): a table to a
    built-in role, two columns to another, a table to PUBLIC, default privileges. Undone
    afterwards."""
    statements = [
        (
            "GRANT SELECT ON queue_arrival TO pg_monitor",
            "REVOKE SELECT ON queue_arrival FROM pg_monitor",
        ),
        (
            "GRANT SELECT (id, at) ON releases_disclosurelog TO pg_read_all_stats",
            "REVOKE SELECT (id, at) ON releases_disclosurelog FROM pg_read_all_stats",
        ),
        ("GRANT SELECT ON clinic_site TO PUBLIC", "REVOKE SELECT ON clinic_site FROM PUBLIC"),
        (
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO pg_monitor",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM pg_monitor",
        ),
    ]
    return statements


def run_command(*args, env: dict) -> subprocess.CompletedProcess:
    """manage.py in its own process, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **{
                k: v
                for k, v in os.environ.items()
                if k not in ("DATABASE_URL", "DATABASE_OWNER_URL", "SQLITE_PATH")
            },
            "DJANGO_SETTINGS_MODULE": "clinic.settings",
            "DEBUG": "1",
            "PYTHONWARNINGS": "ignore",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def make_backup(to: Path) -> Path:
    out = io.StringIO()
    call_command("backup", "--to", str(to), stdout=out)
    match = re.match(r"Backup written to (\S+\.tar) \(", out.getvalue())
    assert match, out.getvalue()
    return Path(match.group(1))


# --- the round trip ----------------------------------------------------------------------------


def assert_round_trip(tmp_path, records, fresh_database, caplog):
    """Back up, check, restore into the fresh database in a new process, compare."""
    target, url = fresh_database
    archive = make_backup(tmp_path / "backups")
    checked = io.StringIO()
    call_command("restore", str(archive), "--check-only", stdout=checked)
    restored_media = tmp_path / "restored-media"
    env = {"MEDIA_ROOT": str(restored_media)}
    if url.startswith("sqlite"):
        env["SQLITE_PATH"] = target["NAME"]
    else:
        env["DATABASE_URL"] = url

    result = run_command("restore", str(archive), env=env)

    assert result.returncode == 0, result.stderr
    assert "Row counts match the manifest" in result.stdout
    assert "The archive is intact" in checked.getvalue()
    for output in (checked.getvalue(), result.stdout, result.stderr, caplog.text):
        assert "Maria" not in output and "Quintana" not in output
        assert "1979" not in output
    # The upload: the same bytes, where the restored record says it is.
    name = Consent.objects.get(pk=records.pk).scanned_form.name
    with FileSystemStorage(location=restored_media).open(name) as restored:
        assert restored.read() == SCAN
    assert stat.S_IMODE((restored_media / name).stat().st_mode) == 0o600


@pytest.mark.sqlite
def test_sqlite_backup_restores_every_row_trigger_and_upload(
    tmp_path, records, fresh_database, caplog
):
    before = database_state()
    assert sum(len(rows) for rows in before["rows"].values()) > 4000
    assert before["triggers"]

    assert_round_trip(tmp_path, records, fresh_database, caplog)

    after = sqlite_state(fresh_database[0]["NAME"])
    assert after["schema"] == before["schema"]
    assert after["triggers"] == before["triggers"]
    for table, rows in before["rows"].items():
        assert after["rows"][table] == rows, table
    assert after == before
    # The triggers work, not only exist: a sealed consent's purposes cannot be removed.
    db = sqlite3.connect(fresh_database[0]["NAME"])
    with pytest.raises(sqlite3.DatabaseError):
        db.execute("DELETE FROM releases_consentpurpose")
    db.close()


@pytest.mark.postgres
def test_postgres_backup_restores_every_row_trigger_grant_and_upload(
    tmp_path, records, fresh_database, caplog
):
    grants = pg_grants_of_our_own()
    with as_owner(), connection.cursor() as cursor:
        for grant, _revoke in grants:
            cursor.execute(grant)
    try:
        before = database_state()
        assert sum(len(rows) for rows in before["rows"].values()) > 4000
        assert before["triggers"]
        assert any(grantee == "pg_monitor" for _, grantee, *_ in before["grants"])
        assert before["column_grants"] and before["default_privileges"]

        assert_round_trip(tmp_path, records, fresh_database, caplog)
    finally:
        with as_owner(), connection.cursor() as cursor:
            for _grant, revoke in grants:
                cursor.execute(revoke)

    after = pg_state(fresh_database[0]["NAME"])
    assert after["triggers"] == before["triggers"]
    assert after["grants"] == before["grants"]
    assert after["column_grants"] == before["column_grants"]
    assert after["relations"] == before["relations"]
    for table, rows in before["rows"].items():
        assert after["rows"][table] == rows, table
    assert after == before
    # The append-only trigger works in the restored database.
    import psycopg

    with (
        psycopg.connect(**pg_params(fresh_database[0]["NAME"])) as db,
        pytest.raises(psycopg.Error, match="append-only"),
    ):
        db.execute("DELETE FROM releases_disclosurelog")


# --- the archive -------------------------------------------------------------------------------


def test_archive_is_one_private_file_named_for_the_time_with_a_full_manifest(tmp_path, records):
    to = tmp_path / "new" / "backups"
    archive = make_backup(to)

    assert re.fullmatch(r"threshold-backup-\d{8}T\d{6}Z\.tar", archive.name)
    assert list(to.iterdir()) == [archive]
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(to.stat().st_mode) == stat.S_IMODE((to.parent).stat().st_mode) == 0o700
    with tarfile.open(archive) as tar:
        members = {info.name: tar.extractfile(info).read() for info in tar.getmembers()}
        assert all(stat.S_IMODE(info.mode) == 0o600 for info in tar.getmembers())
    manifest = json.loads(members.pop("manifest.json"))
    assert manifest["format"] == "threshold-backup"
    assert manifest["format_version"] == 1
    assert manifest["engine"] == ("sqlite" if connection.vendor == "sqlite" else "postgresql")
    created = manifest["created_at"]
    assert created.endswith("Z") and archive.name == (
        f"threshold-backup-{created[:-1].replace('-', '').replace(':', '')}Z.tar"
    )
    # A SHA-256 of every file, and nothing unlisted.
    import hashlib

    assert set(manifest["files"]) == set(members)
    for name, data in members.items():
        assert manifest["files"][name] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
    assert f"media/{records.scanned_form.name}" in members
    assert members[f"media/{records.scanned_form.name}"] == SCAN
    # The migrations applied, and a row count for every table.
    applied = MigrationRecorder.Migration.objects.order_by("id").values_list("app", "name")
    assert manifest["migrations"] == [f"{app}.{name}" for app, name in applied]
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608
            assert manifest["tables"][table] == cursor.fetchone()[0], table
    assert set(tables) <= set(manifest["tables"])
    assert manifest["tables"]["releases_disclosurelog"] == 1
    assert manifest["triggers"]


# --- a damaged or changed archive --------------------------------------------------------------


def rewrite(archive: Path, out: Path, *, change=None, drop=None, add=None, manifest=None) -> Path:
    """A copy of `archive` with one member's bytes changed, one dropped, one added, or the
    manifest edited (the manifest carries the hashes, so editing it keeps them valid)."""
    with tarfile.open(archive) as source, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as copy:
        for info in source.getmembers():
            data = source.extractfile(info).read()
            if info.name == drop:
                continue
            if info.name == change:
                data = data[:-1] + bytes([data[-1] ^ 0x01])
            if info.name == "manifest.json" and manifest:
                data = json.dumps(manifest(json.loads(data))).encode()
            info.size = len(data)
            copy.addfile(info, io.BytesIO(data))
        for name, data in add or []:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            copy.addfile(info, io.BytesIO(data))
    return out


def database_member() -> str:
    return "database.sqlite3" if connection.vendor == "sqlite" else "database.pgdump"


@pytest.mark.parametrize(
    "damage",
    [
        "changed upload",
        "changed database",
        "missing upload",
        "unlisted upload",
        "escaping name",
        "truncated",
    ],
)
def test_an_archive_that_does_not_match_its_manifest_is_refused_and_nothing_is_written(
    tmp_path, records, fresh_database, damage
):
    archive = make_backup(tmp_path / "backups")
    upload = f"media/{records.scanned_form.name}"
    bad = tmp_path / "bad.tar"
    if damage == "changed upload":
        rewrite(archive, bad, change=upload)
    elif damage == "changed database":
        rewrite(archive, bad, change=database_member())
    elif damage == "missing upload":
        rewrite(archive, bad, drop=upload)
    elif damage == "unlisted upload":
        rewrite(archive, bad, add=[("media/consents/extra.pdf", b"%PDF-1.4\n")])
    elif damage == "escaping name":
        rewrite(archive, bad, add=[("media/../../outside.txt", b"x")])
    else:
        bad.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    target, _url = fresh_database
    media_root = tmp_path / "restored-media"

    with pytest.raises(CommandError) as checked:
        call_command("restore", str(bad), "--check-only", stdout=io.StringIO())
    with pytest.raises(BackupError) as restored:
        backup_restore(archive=bad, database=target, media_root=media_root)

    assert restored.value.code in ("tampered", "not_archive")
    assert "Nothing was restored" in restored.value.message or damage == "truncated"
    assert str(checked.value) == restored.value.message
    assert not media_root.exists()
    assert not (tmp_path / "outside.txt").exists()
    if connection.vendor == "sqlite":
        assert not Path(target["NAME"]).parent.exists()
    else:
        assert not pg_state(target["NAME"])["rows"]


# --- refusing a target that is not empty -------------------------------------------------------


def test_restore_refuses_a_database_that_is_not_empty(tmp_path, records, settings):
    archive = make_backup(tmp_path / "backups")
    settings.MEDIA_ROOT = tmp_path / "restored-media"
    before = database_state()

    with pytest.raises(CommandError, match="Nothing was restored") as refused:
        call_command("restore", str(archive), stdout=io.StringIO())

    expected = "already a database" if connection.vendor == "sqlite" else "is not empty"
    assert expected in str(refused.value)
    assert database_state() == before
    assert not settings.MEDIA_ROOT.exists()


@pytest.mark.sqlite
def test_sqlite_restore_with_force_moves_the_old_database_and_its_wal_aside(
    tmp_path, records, fresh_database
):
    archive = make_backup(tmp_path / "backups")
    target = Path(fresh_database[0]["NAME"])
    target.parent.mkdir()
    old = sqlite3.connect(target)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE earlier (x)")
    old.execute("INSERT INTO earlier VALUES (1)")
    old.commit()  # left open: its -wal and -shm stay beside it
    assert target.with_name("db.sqlite3-wal").exists()

    with pytest.raises(BackupError) as refused:
        backup_restore(archive=archive, database=fresh_database[0], media_root=tmp_path / "m")
    assert refused.value.code == "exists"
    result = backup_restore(
        archive=archive, database=fresh_database[0], media_root=tmp_path / "m", force=True
    )
    old.close()

    aside = result.moved_aside
    assert aside.name.startswith("db.sqlite3.before-restore-")
    assert {p.name for p in aside.iterdir()} >= {"db.sqlite3", "db.sqlite3-wal"}
    assert not target.with_name("db.sqlite3-wal").exists()
    kept = sqlite3.connect(aside / "db.sqlite3")
    assert kept.execute("SELECT x FROM earlier").fetchall() == [(1,)]
    kept.close()
    assert sqlite_state(target)["rows"] == database_state()["rows"]


def test_restore_refuses_to_overwrite_a_different_upload_and_keeps_an_identical_one(
    tmp_path, records, fresh_database
):
    archive = make_backup(tmp_path / "backups")
    media_root = tmp_path / "restored-media"
    existing = media_root / records.scanned_form.name
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"%PDF-1.4\nsomeone else's form\n")

    with pytest.raises(BackupError) as refused:
        backup_restore(archive=archive, database=fresh_database[0], media_root=media_root)

    assert refused.value.code == "media_conflict"
    assert existing.read_bytes() == b"%PDF-1.4\nsomeone else's form\n"
    if connection.vendor == "sqlite":
        assert not Path(fresh_database[0]["NAME"]).exists()
    else:
        assert not pg_state(fresh_database[0]["NAME"])["rows"]

    existing.write_bytes(SCAN)
    result = backup_restore(archive=archive, database=fresh_database[0], media_root=media_root)
    assert (result.media_written, result.media_present) == (0, 1)


@pytest.mark.postgres
def test_postgres_restore_refuses_when_a_role_of_the_dump_is_missing(
    tmp_path, records, fresh_database
):
    archive = make_backup(tmp_path / "backups")

    def with_a_role_that_is_not_there(manifest):
        manifest["database"]["roles"].append("wt_backup_no_such_role")
        return manifest

    edited = rewrite(archive, tmp_path / "roles.tar", manifest=with_a_role_that_is_not_there)

    with pytest.raises(BackupError, match="wt_backup_no_such_role") as refused:
        backup_restore(archive=edited, database=fresh_database[0], media_root=tmp_path / "m")

    assert refused.value.code == "roles_missing"
    assert not pg_state(fresh_database[0]["NAME"])["rows"]
    assert not (tmp_path / "m").exists()


# --- a backup that fails -----------------------------------------------------------------------


def test_a_backup_that_fails_half_way_leaves_nothing(tmp_path, records, monkeypatch):
    media_files = services.media_files

    def then_a_disk_error(*args, **kwargs):
        yield from media_files(*args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(services, "media_files", then_a_disk_error)
    to = tmp_path / "backups"

    with pytest.raises(CommandError, match=r"No backup was made.*No space left"):
        call_command("backup", "--to", str(to), stdout=io.StringIO())

    assert list(to.iterdir()) == []


@pytest.mark.postgres
def test_a_backup_without_pg_dump_leaves_nothing(tmp_path, records, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    to = tmp_path / "backups"

    with pytest.raises(CommandError, match="pg_dump is not installed"):
        call_command("backup", "--to", str(to), stdout=io.StringIO())

    assert list(to.iterdir()) == []


@pytest.mark.postgres
def test_a_failing_pg_dump_leaves_nothing_and_its_quoted_data_is_not_repeated(
    tmp_path, records, monkeypatch
):
    tools = tmp_path / "bin"
    tools.mkdir()
    fake = tools / "pg_dump"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 99"; exit 0; fi\n'
        "printf 'PGDMP half a dump'\n"
        f"echo 'pg_dump: error: Dumping the contents of table \"visits_person\" failed' >&2\n"
        f"echo 'pg_dump: detail: Error message from server: ERROR:  could not read block' >&2\n"
        f"echo 'DETAIL:  Failing row contains ({NAME}, 1979-03-14).' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o700)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    to = tmp_path / "backups"

    with pytest.raises(CommandError, match="pg_dump failed") as failed:
        call_command("backup", "--to", str(to), stdout=io.StringIO())

    assert "could not read block" in str(failed.value)
    assert NAME not in str(failed.value)
    assert list(to.iterdir()) == []


def test_check_only_reads_the_database_in_the_archive(tmp_path, records):
    archive = make_backup(tmp_path / "backups")

    manifest, notes = backup_check(archive=archive)

    assert manifest["tables"]["releases_disclosurelog"] == 1
    assert notes and ("integrity check" in notes[0] or "pg_restore reads the dump" in notes[0])


def test_two_backups_in_the_same_second_do_not_overwrite_each_other(tmp_path, records, media):
    now, to = timezone.now(), tmp_path / "backups"
    first = backup_create(to=to, database=connection.settings_dict, media_root=media, now=now)

    with pytest.raises(BackupError) as refused:
        backup_create(to=to, database=connection.settings_dict, media_root=media, now=now)

    assert refused.value.code == "exists"
    assert list(to.iterdir()) == [first.path]
