"""PostgreSQL: pg_dump from an exported snapshot, pg_restore in one transaction, and the catalog
facts (row counts, triggers, owners, grants) a restore is compared with."""

# ruff: noqa: S608 (fixed SQL built from the constants below; table names are quoted)

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from clinic.backup.archive import extract
from clinic.backup.common import BackupError

# Without it pg_dump would wait for ever behind a migration holding a table lock; a backup run
# from cron should fail and say so instead.
PG_LOCK_WAIT = "120s"

# The libpq connection parameters a Django DATABASES entry can carry, and the environment
# variable pg_dump and pg_restore read each from (never their command line: anyone on the
# machine can read a process's arguments).
LIBPQ_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING",
    "require_auth": "PGREQUIREAUTH",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}

# Options Django's PostgreSQL backend reads itself; they are not connection parameters.
DJANGO_ONLY_OPTIONS = {
    "isolation_level",
    "assume_role",
    "server_side_binding",
    "pool",
    "cursor_factory",
    "context",
    "prepare_threshold",
}

USER_SCHEMA = (
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND {n}.nspname NOT LIKE 'pg!_toast%' ESCAPE '!' "
    "AND {n}.nspname NOT LIKE 'pg!_temp!_%' ESCAPE '!'"
)

NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass "
    "AND d.objid = {oid} AND d.deptype = 'e')"
)

TABLES_SQL = f"""
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMA.format(n="n")}
  AND {NOT_EXTENSION.format(catalog="pg_class", oid="c.oid")}
ORDER BY 1, 2
"""

TRIGGERS_SQL = f"""
SELECT n.nspname, c.relname, t.tgname FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND {USER_SCHEMA.format(n="n")}
ORDER BY 1, 2, 3
"""

# Everything that has an owner or privileges: relations (tables, views, sequences), columns,
# schemas, functions and default privileges. No ACL means the default one: an ACL that says
# the same thing explicitly is not dumped, and comes back as none.
OBJECTS_SQL = f"""
SELECT 'relation' AS kind, format('%I.%I', n.nspname, c.relname) AS name,
       c.relowner AS owner,
       coalesce(
         c.relacl,
         acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner)
       ) AS acl
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {USER_SCHEMA.format(n="n")}
  AND {NOT_EXTENSION.format(catalog="pg_class", oid="c.oid")}
UNION ALL
SELECT 'column', format('%I.%I.%I', n.nspname, c.relname, a.attname), NULL, a.attacl
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
  AND {USER_SCHEMA.format(n="n")}
UNION ALL
SELECT 'schema', format('%I', n.nspname), n.nspowner,
       coalesce(n.nspacl, acldefault('n'::"char", n.nspowner))
FROM pg_namespace n WHERE {USER_SCHEMA.format(n="n")}
UNION ALL
SELECT 'function', p.oid::regprocedure::text, p.proowner,
       coalesce(p.proacl, acldefault('f'::"char", p.proowner))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {USER_SCHEMA.format(n="n")} AND {NOT_EXTENSION.format(catalog="pg_proc", oid="p.oid")}
UNION ALL
SELECT 'default privileges',
       format('%s in %s for %s', d.defaclobjtype, coalesce(n.nspname, '*'),
              pg_get_userbyid(d.defaclrole)),
       NULL, d.defaclacl
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
"""

OWNERS_SQL = f"""
SELECT kind, name, pg_get_userbyid(owner) FROM ({OBJECTS_SQL}) o
WHERE owner IS NOT NULL ORDER BY 1, 2
"""

GRANTS_SQL = f"""
SELECT o.kind, o.name,
       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(g.grantee) END,
       g.privilege_type || CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
FROM ({OBJECTS_SQL}) o, aclexplode(o.acl) g
ORDER BY 1, 2, 3, 4
"""

# What makes a database "not empty" for a restore: any table, view, sequence or function of
# its own (an extension's objects are not the database's own).
USER_OBJECTS_SQL = f"""
SELECT
  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {USER_SCHEMA.format(n="n")}
     AND {NOT_EXTENSION.format(catalog="pg_class", oid="c.oid")})
  + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE {USER_SCHEMA.format(n="n")}
       AND {NOT_EXTENSION.format(catalog="pg_proc", oid="p.oid")})
"""

DATABASE_OWNER_SQL = (
    "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
)


def qualified(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def params_of(database: Mapping) -> dict:
    """libpq connection parameters from a Django DATABASES entry."""
    params = {
        key: str(value)
        for key, value in {
            "dbname": database.get("NAME"),
            "user": database.get("USER"),
            "password": database.get("PASSWORD"),
            "host": database.get("HOST"),
            "port": database.get("PORT"),
        }.items()
        if value not in (None, "")
    }
    for key, value in (database.get("OPTIONS") or {}).items():
        if key in DJANGO_ONLY_OPTIONS:
            continue
        if key not in LIBPQ_ENV:
            raise BackupError(
                "pg_option",
                f"The database option {key!r} cannot be passed on to pg_dump and pg_restore.",
            )
        params[key] = str(value)
    if "dbname" not in params:
        raise BackupError("pg_no_name", "The database settings name no database.")
    return params


def _env(params: Mapping) -> dict:
    env = {**os.environ, "PGAPPNAME": "threshold-backup"}
    env.update({LIBPQ_ENV[key]: value for key, value in params.items()})
    return env


def connect(params: Mapping, **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(**params, **kwargs)
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or ["no reason given"])[-1]
        raise BackupError(
            "pg_connect",
            f"Could not connect to the PostgreSQL database {params['dbname']!r}: {reason}",
        ) from None


@contextmanager
def errors(doing: str) -> Iterator[None]:
    """PostgreSQL's refusals as a BackupError, with its primary message only (the detail
    may quote data)."""
    try:
        yield
    except psycopg.Error as exc:
        primary = exc.diag.message_primary if exc.diag else None
        reason = primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BackupError("pg_error", f"PostgreSQL refused while {doing}: {reason}") from None


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"no_{name}",
            f"{name} is not installed. It comes with the PostgreSQL client, whose major "
            "version must be at least the server's (Debian: postgresql-client-16 from the "
            "PostgreSQL apt repository for a PostgreSQL 16 server).",
        )
    return path


# Lines in which PostgreSQL's tools may quote data (a row that failed, a key's value).
_QUOTES_DATA = re.compile(
    r"^(?:pg_\w+: )?(?:(?:detail|error|warning|hint): )?(?:DETAIL|CONTEXT|QUERY|LINE \d+|"
    r"Command was|COPY)\b"
)


def tool_message(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    kept = [line[:300] for line in lines if line and not _QUOTES_DATA.match(line)]
    return " / ".join(kept[-6:]) or "no message"


def dump(database: Mapping, target: Path) -> dict:
    params = params_of(database)
    pg_dump = tool("pg_dump")
    version = subprocess.run(  # noqa: S603 (the full path of pg_dump, fixed arguments)
        [pg_dump, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    connection = connect(params)
    try:
        with errors("reading the database"):
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            connection.read_only = True
            # The first statement fixes the transaction's snapshot; pg_dump dumps that one.
            snapshot = connection.execute("SELECT pg_export_snapshot()").fetchone()[0]
            facts = catalog(connection)
            server = connection.execute("SHOW server_version").fetchone()[0]
            owner = connection.execute(DATABASE_OWNER_SQL).fetchone()[0]
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            # Kept open until pg_dump is done: the snapshot lives as long as this transaction.
            done = subprocess.run(  # noqa: S603 (the full path of pg_dump, no user input)
                [
                    pg_dump,
                    "--format=custom",
                    "--no-password",
                    f"--snapshot={snapshot}",
                    f"--lock-wait-timeout={PG_LOCK_WAIT}",
                ],
                stdout=out,
                stderr=subprocess.PIPE,
                env=_env(params),
                check=False,
            )
        if done.returncode != 0:
            raise BackupError(
                "pg_dump_failed",
                f"pg_dump failed (exit status {done.returncode}): {tool_message(done.stderr)}",
            )
    finally:
        connection.close()
    roles = {owner} | {row[2] for row in facts["owners"]} | {row[2] for row in facts["grants"]}
    facts["database"] = {
        "file": target.name,
        "server_version": server,
        "pg_dump": version,
        "owner": owner,
        # Roles live in the cluster, not in the dump: a restore needs them to exist first.
        "roles": sorted(roles - {"PUBLIC"}),
    }
    return facts


def catalog(connection: psycopg.Connection) -> dict:
    """Tables with their row counts, triggers, owners, grants and applied migrations."""
    counts = {}
    for schema, name in connection.execute(TABLES_SQL).fetchall():
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
        counts[qualified(schema, name)] = connection.execute(query).fetchone()[0]
    triggers = [
        [qualified(schema, table), name]
        for schema, table, name in connection.execute(TRIGGERS_SQL).fetchall()
    ]
    migrations = []
    if connection.execute("SELECT to_regclass('django_migrations')").fetchone()[0]:
        migrations = [
            f"{app}.{name}"
            for app, name in connection.execute(
                "SELECT app, name FROM django_migrations ORDER BY id"
            ).fetchall()
        ]
    return {
        "tables": counts,
        "triggers": triggers,
        "owners": [list(row) for row in connection.execute(OWNERS_SQL).fetchall()],
        "grants": [list(row) for row in connection.execute(GRANTS_SQL).fetchall()],
        "migrations": migrations,
    }


_TOC_LINE = re.compile(r"^\d+; \d+ \d+ (TABLE DATA|TRIGGER) (\S+) (\S+)(?: (\S+))? \S+$")


def check_dump(dump_file: Path, manifest: Mapping) -> list[str]:
    """Read the dump's table of contents: it must hold the data of every table with rows and
    every trigger the manifest lists."""
    pg_restore = shutil.which("pg_restore")
    if pg_restore is None:
        return ["pg_restore is not installed here, so the dump's contents were not listed."]
    done = subprocess.run(  # noqa: S603 (the full path of pg_restore, a file we wrote)
        [pg_restore, "--list", str(dump_file)], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise BackupError(
            "bad_dump", f"pg_restore cannot read the dump: {tool_message(done.stderr)}"
        )
    data, triggers = set(), set()
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        match = _TOC_LINE.match(line.strip())
        if match is None:
            continue
        kind, schema, table, trigger = match.groups()
        if kind == "TABLE DATA":
            data.add(qualified(schema, table))
        elif trigger:
            triggers.add((qualified(schema, table), trigger))
    no_data = [t for t, rows in manifest["tables"].items() if rows and t not in data]
    no_trigger = [t for t in map(tuple, manifest["triggers"]) if t not in triggers]
    if no_data or no_trigger:
        raise BackupError(
            "bad_dump",
            f"The dump lacks the data of {len(no_data)} tables and {len(no_trigger)} triggers "
            "that the manifest lists.",
        )
    return [
        "pg_restore reads the dump, and it holds the data of every table with rows and every "
        "trigger the manifest lists."
    ]


def preflight(params: Mapping, manifest: Mapping) -> list[str]:
    with connect(params, autocommit=True) as connection, errors("looking at it"):
        objects = connection.execute(USER_OBJECTS_SQL).fetchone()[0]
        if objects:
            raise BackupError(
                "not_empty",
                f"The database {params['dbname']!r} is not empty (it has {objects} tables, "
                "views, sequences or functions). Nothing was restored. Restore into a new, "
                "empty database.",
            )
        database = manifest.get("database", {})
        wanted = sorted(database.get("roles", []))
        found = {
            name
            for (name,) in connection.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [wanted]
            ).fetchall()
        }
        missing = [role for role in wanted if role not in found]
        if missing:
            raise BackupError(
                "roles_missing",
                "These database roles own objects or hold privileges in the backup but do "
                f"not exist on this server: {', '.join(missing)}. Nothing was restored. "
                "Create them first (roles belong to the server, not to a database dump).",
            )
        owner = connection.execute(DATABASE_OWNER_SQL).fetchone()[0]
    notes = []
    if database.get("owner") and owner != database["owner"]:
        notes.append(
            f"The backed-up database was owned by {database['owner']}; this one is owned by "
            f"{owner}. Tables keep their owners and grants either way; change the "
            f"database's owner if that was not meant (ALTER DATABASE ... OWNER TO ...)."
        )
    return notes


def restore(tar, info, expected: str, params: Mapping, pg_restore: str) -> None:
    with tempfile.TemporaryDirectory(prefix="threshold-restore-") as work:
        dump_file = Path(work) / info.name
        with open(os.open(dump_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            extract(tar, info, expected, out)
        done = subprocess.run(  # noqa: S603 (the full path of pg_restore, a file we wrote)
            [
                pg_restore,
                "--exit-on-error",
                "--single-transaction",
                "--no-password",
                # The database by name only; everything else, the password above all, goes
                # through the environment.
                f"--dbname=dbname={_conninfo_value(params['dbname'])}",
                str(dump_file),
            ],
            capture_output=True,
            env=_env(params),
            check=False,
        )
    if done.returncode != 0:
        raise BackupError(
            "pg_restore_failed",
            "pg_restore failed, and nothing was restored (it runs in one transaction): "
            f"{tool_message(done.stderr)}",
        )
    # A restored database has no planner statistics until autovacuum gets round to it.
    with connect(params, autocommit=True) as connection, errors("analysing it"):
        connection.execute("ANALYZE")


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
