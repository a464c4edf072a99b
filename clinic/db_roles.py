"""Two database roles on PostgreSQL, and the append-only audit tables.

- The **owner role** (`DATABASE_OWNER_URL`) owns the schema: migrations and the few commands
  that change schema or maintain tables run as it (`as_owner`, `OwnerCommand`): `migrate`,
  `close_day` and `refresh_reports` (VACUUM ANALYZE of the report summaries),
  `generate_synthetic` and `import_visits` (bulk loads that drop and rebuild indexes and
  foreign keys), `restore`.
- The **application role** (`DATABASE_URL`) owns nothing. After every migrate it is granted
  exactly what the application needs (`grant_application_role`): SELECT, INSERT, UPDATE and
  DELETE on ordinary tables, only SELECT and INSERT on the append-only tables, only SELECT on
  the history of changes (its triggers write it as the owner), and no
  TRUNCATE, REFERENCES or TRIGGER anywhere; it cannot create objects in the schema, disable
  triggers (that needs ownership) or set `session_replication_role` (that needs a superuser).

The append-only tables also carry triggers that refuse UPDATE and DELETE on both engines
(`append_only_sql`), so that neither a mistake in code nor the owner role by accident can
rewrite them. On SQLite those triggers are all there is: anything that can write the database
file can drop them (README, "SQLite, honestly").

Without `DATABASE_OWNER_URL` (SQLite, or a PostgreSQL set up with one role) everything runs as
the one connection and no grants are given.
"""

from contextlib import contextmanager

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections

# Inserts only.
APPEND_ONLY_TABLES = [
    "clinic_accesslog",
    "clinic_changehistory",
    "clinic_lockoutevent",
    "django_admin_log",
    "queue_arrivalevent",
    "releases_disclosurelog",
    "releases_emergencyrelease",
    "releases_emergencyreview",
    "releases_handover",
    "visits_addendum",
    "visits_handoffnote",
]


# Read only: written by triggers that run as the tables' owner (SECURITY DEFINER), so the
# application cannot add forged rows either.
READ_ONLY_TABLES = ["clinic_changehistory"]


def owner_configured() -> bool:
    return bool(getattr(settings, "DATABASE_OWNER", None))


@contextmanager
def as_owner(alias: str = DEFAULT_DB_ALIAS, *, strict: bool = True):
    """Run the block on a connection of the owner role (a no-op without one configured).

    The connection is closed before and after, so nothing done as the owner stays on a
    connection the application uses afterwards. A connection cannot change roles inside a
    transaction: `strict` makes that an error; otherwise the block runs as the current role
    (a command called from inside a transaction, as tests do), and what needs the owner
    checks `owns_tables` and does without (e.g. a bulk load keeps its indexes)."""
    owner = getattr(settings, "DATABASE_OWNER", None)
    connection = connections[alias]
    if not owner or connection.vendor != "postgresql":
        yield
        return
    if connection.in_atomic_block:
        if strict:
            raise RuntimeError("as_owner() cannot switch roles inside a transaction.")
        yield
        return
    saved = connection.settings_dict["USER"], connection.settings_dict["PASSWORD"]
    if saved[0] == owner["USER"]:
        yield  # already the owner (e.g. while the test database is being created)
        return
    connection.close()
    connection.settings_dict["USER"], connection.settings_dict["PASSWORD"] = (
        owner["USER"],
        owner["PASSWORD"],
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["USER"], connection.settings_dict["PASSWORD"] = saved


class OwnerCommand(BaseCommand):
    """A management command that runs as the owner role (it changes schema or maintains
    tables). Its module docstring should say which."""

    def execute(self, *args, **options):
        with as_owner(options.get("database") or DEFAULT_DB_ALIAS, strict=False):
            return super().execute(*args, **options)


def owns_tables(tables, alias: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether this connection may alter these tables (their owner, or a member of it).
    Always on SQLite."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(bool_and(pg_has_role(c.relowner, 'USAGE')), true) "
            "FROM pg_class c WHERE c.oid = ANY(%s::regclass[])",
            [list(tables)],
        )
        return cursor.fetchone()[0]


def application_role() -> str:
    return getattr(settings, "DATABASE_APPLICATION_ROLE", "") or ""


def grant_application_role(*, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Give the application role exactly its privileges on every table and sequence (after
    each migrate, as the owner). Returns whether anything was granted."""
    connection = connections[using]
    role = application_role()
    if connection.vendor != "postgresql" or not role:
        return False
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        if cursor.fetchone()[0] == role:
            return False  # connected as the application role itself: nothing to give
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        tables = [row[0] for row in cursor.fetchall()]
        app = quote(role)
        cursor.execute(f"REVOKE ALL ON SCHEMA public FROM {app}")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {app}")
        for table in tables:
            name = quote(table)
            cursor.execute(f"REVOKE ALL ON {name} FROM {app}")
            if table in READ_ONLY_TABLES:
                cursor.execute(f"GRANT SELECT ON {name} TO {app}")
            elif table in APPEND_ONLY_TABLES:
                cursor.execute(f"GRANT SELECT, INSERT ON {name} TO {app}")
            else:
                cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {app}")
        cursor.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {app}")
        # UPDATE: setval() after bulk loads with ids of their own. A sequence is no audit.
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {app}")
    return True


def grant_after_migrate(sender, using=DEFAULT_DB_ALIAS, **kwargs):
    # Once, after the last app (INSTALLED_APPS order), when every table exists.
    if sender.name == "reports":
        grant_application_role(using=using)


# --- append-only triggers (used by migrations) --------------------------------------------------


def append_only_sql(table: str, vendor: str) -> tuple[list[str], list[str]]:
    """(create, drop) statements for triggers that refuse UPDATE and DELETE on `table`."""
    name = f"{table}_append_only"
    if vendor == "postgresql":
        create = [
            f"""
            CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{table} is append-only (% refused)', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$ LANGUAGE plpgsql
            """,
            f"""
            CREATE TRIGGER {name} BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {name}()
            """,
        ]
        drop = [f"DROP TRIGGER IF EXISTS {name} ON {table}", f"DROP FUNCTION IF EXISTS {name}()"]
        return create, drop
    if vendor == "sqlite":
        create = [
            f"""
            CREATE TRIGGER {name}_{op.lower()} BEFORE {op} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only ({op} refused)'); END
            """
            for op in ("UPDATE", "DELETE")
        ]
        drop = [f"DROP TRIGGER IF EXISTS {name}_{op}" for op in ("update", "delete")]
        return create, drop
    return [], []


def append_only_operation(*tables: str, vendors=("postgresql", "sqlite")):
    """A migration operation adding the append-only triggers to `tables` (and removing them
    when migrating back)."""
    from django.db import migrations

    def create(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor in vendors:
            for table in tables:
                for statement in append_only_sql(table, vendor)[0]:
                    schema_editor.execute(statement, params=None)

    def drop(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor in vendors:
            for table in tables:
                for statement in append_only_sql(table, vendor)[1]:
                    schema_editor.execute(statement, params=None)

    return migrations.RunPython(create, drop, elidable=False)


# The triggers that refuse changes (append-only tables, sealed visits and consents), by name;
# the others (the history of changes, the report summaries' marks) record what happens.
GUARD_PATTERNS = ("append_only", "sealed", "no_update", "no_delete")


@contextmanager
def triggers_lifted(alias: str = DEFAULT_DB_ALIAS, *, guards_only: bool = False):
    """Database administration only: the block runs with the database's triggers lifted, and
    they are all back afterwards. `guards_only`: only those that refuse changes, so that what
    the block does is still recorded in the history of changes and the summaries' marks.

    SQLite: the triggers are dropped and created again from their own SQL. PostgreSQL: they
    are disabled and enabled again, which only the owner role can do (use inside `as_owner`).
    Used by removing synthetic demo data (guards only) and by the test suite's flush between
    tests; never by anything a person does in the product."""
    connection = connections[alias]

    def wanted(name: str) -> bool:
        return not guards_only or any(pattern in name for pattern in GUARD_PATTERNS)

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            triggers = [(name, sql) for name, sql in cursor.fetchall() if wanted(name)]
            for name, _sql in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                for _name, sql in triggers:
                    cursor.execute(sql)
        return
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, t.tgname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE NOT t.tgisinternal AND n.nspname = 'public' ORDER BY 1, 2"
            )
            triggers = [(table, name) for table, name in cursor.fetchall() if wanted(name)]
            for table, name in triggers:
                cursor.execute(f"ALTER TABLE {quote(table)} DISABLE TRIGGER {quote(name)}")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                for table, name in triggers:
                    cursor.execute(f"ALTER TABLE {quote(table)} ENABLE TRIGGER {quote(name)}")
        return
    yield
