"""The history of changes: every INSERT, UPDATE and DELETE of a person's details and of the
clinical record, written by the database itself into `clinic_changehistory` (README: "History
of changes").

Triggers, not application code, write it, so no path skips it: services, the admin, queryset
`.update()`, `bulk_create`, COPY, raw SQL. Each row says which table and row, the person it
concerns and their site, the operation, when (database time), who, and what changed: on
INSERT every column's value, on DELETE every column's last value, on UPDATE only the columns
that changed, as [before, after]. An UPDATE that changes nothing writes nothing. The history
table itself refuses UPDATE and DELETE on both databases.

PostgreSQL: one statement-level trigger per table and operation, with transition tables (as
reports/migrations/0003 does), so a COPY or a bulk insert of 100,000 rows runs one INSERT ...
SELECT into the history, not 100,000 trigger calls. The functions are SECURITY DEFINER: the
application's database role needs no INSERT right on the history table at all.
SQLite: row triggers (SQLite has no others), whose column lists come from the models at the
migration that creates them: a later migration that rebuilds an audited table on SQLite (it
drops the table's triggers) must run `recreate_sqlite_triggers` again;
tests/clinic/test_history.py fails until it does.

Who: the trigger reads the acting staff member from the database session. The application
keeps it in a context variable (`history_actor`, set for each request by
`HistoryActorMiddleware` after authentication, and by management commands that write), and
the database reads that variable:
- SQLite: through SQL functions registered on every connection (`threshold_actor()`,
  `threshold_via()`) that read the context variable when the trigger runs. A connection not
  made by Django (the sqlite3 shell) has no such functions, so it cannot change an audited
  table at all.
- PostgreSQL: through the session settings `threshold.actor` and `threshold.via`. Before any
  statement that may write, an execute wrapper on every connection compares the context
  variable with what that connection was last told and, if they differ, sets them first. A
  setting made inside a transaction is undone if the transaction rolls back, so one made
  there is not remembered: it is set again before the next write. A new connection (perhaps
  a pooled session that served someone else) is told before its first write. Session
  settings need one server session per connection: behind a transaction-pooling proxy
  (PgBouncer's pool_mode=transaction) the setting and the write may reach different sessions.
Context variables belong to one request's context (under ASGI, sync views run in a worker
thread with a copy of that context), and the database is told again whenever they differ, so
an actor cannot outlive its request on a reused connection or thread.
"""

# ruff: noqa: S608 (SQL built from the models' table and column names, each checked by _name)

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, wraps

# The append-only audit table this module writes (for the database grants: the application
# role needs only SELECT on it, since the triggers that write it are SECURITY DEFINER).
HISTORY_TABLES = ("clinic_changehistory",)
HISTORY_TABLE = HISTORY_TABLES[0]

# The audited tables, and how a row of each finds the person it concerns and their site: a
# path of (foreign-key column, table) hops ending at a column, e.g. a tox result goes through
# its screen to the visit's person_id. Migrations freeze their own copy of this mapping.
AUDITED: dict[str, dict[str, tuple[str, ...]]] = {
    "clinic_person": {"person": ("id",), "site": ("site_id",)},
    # A merge of two records concerns the second record (clinic/migrations/0012).
    "clinic_personmerge": {"person": ("duplicate_id",), "site": ("site_id",)},
    "visits_visit": {"person": ("person_id",), "site": ("site_id",)},
    **{
        table: {
            "person": ("visit_id", "visits_visit", "person_id"),
            "site": ("visit_id", "visits_visit", "site_id"),
        }
        for table in (
            "visits_visitparticipant",
            "visits_visit_services",
            "visits_addendum",
            "visits_medicationevent",
            "visits_toxscreen",
        )
    },
    "visits_toxresult": {
        "person": ("screen_id", "visits_toxscreen", "visit_id", "visits_visit", "person_id"),
        "site": ("screen_id", "visits_toxscreen", "visit_id", "visits_visit", "site_id"),
    },
    "visits_goal": {
        "person": ("person_id",),
        "site": ("person_id", "clinic_person", "site_id"),
    },
    "visits_goalprogress": {
        "person": ("goal_id", "visits_goal", "person_id"),
        "site": ("goal_id", "visits_goal", "person_id", "clinic_person", "site_id"),
    },
    "visits_appointment": {"person": ("person_id",), "site": ("site_id",)},
    "releases_consent": {"person": ("person_id",), "site": ("site_id",)},
    **{
        table: {
            "person": ("consent_id", "releases_consent", "person_id"),
            "site": ("consent_id", "releases_consent", "site_id"),
        }
        for table in (
            "releases_consentpurpose",
            "releases_consent_recipients",
            "releases_revocation",
            "releases_expiryeventrecord",
        )
    },
}

# Columns whose value is not copied into the history, only its length (a signature drawn on
# screen is a PNG of tens of kilobytes, and no use to anyone as text).
OPAQUE = {"releases_consent": ("signature_image",)}

# The column types the SQLite triggers write as PostgreSQL's to_jsonb would: true/false, nested
# JSON, and ISO timestamps with their offset (Django keeps naive UTC text there).
BOOLEAN, JSON, DATETIME, OTHER = "boolean", "json", "datetime", "other"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
SQLITE_MAX_COLUMNS = 60  # json_object() takes at most 127 arguments in older SQLite builds


def _name(value: str) -> str:
    # Everything spliced into the SQL below is a table or column name from the models; refuse
    # anything else.
    if not _IDENTIFIER.match(value):
        raise ValueError(f"not a plain SQL identifier: {value!r}")
    return value


def _q(column: str) -> str:
    """A column name, quoted: some are SQL keywords (a goal's progress has a column "on")."""
    return f'"{_name(column)}"'


# --- where a row's person and site come from ----------------------------------------------------


def _hops(path: Sequence[str]) -> list[tuple[str, str]]:
    return [(path[i], path[i + 1]) for i in range(0, len(path) - 1, 2)]


def _remembered(path: Sequence[str], row: str, target: str) -> str:
    """Whom the first parent on `path` concerned, from its own last history row: for a row
    whose parent is already gone (raw SQL may delete a parent first, foreign keys being
    checked at commit). `target` is the history column wanted (person_id or site_id)."""
    fk, table = _hops(path)[0]
    return (
        f"(SELECT h.{_name(target)} FROM {HISTORY_TABLE} h "
        f"WHERE h.table_name = '{_name(table)}' AND h.row_id = {row}.{_q(fk)} "
        "ORDER BY h.id DESC LIMIT 1)"
    )


def _sqlite_path(path: Sequence[str], row: str, target: str) -> str:
    """The value at the end of `path` (a column of the row itself, or (foreign key, table)
    hops to a parent's column) for `row` (NEW or OLD), in a row trigger."""
    if len(path) == 1:
        return f"{row}.{_q(path[0])}"
    hops = _hops(path)
    joins = "".join(
        f" JOIN {_name(table)} p{i + 1} ON p{i + 1}.id = p{i}.{_q(fk)}"
        for i, (fk, table) in enumerate(hops[1:], start=1)
    )
    direct = (
        f"(SELECT p{len(hops)}.{_q(path[-1])} FROM {_name(hops[0][1])} p1{joins} "
        f"WHERE p1.id = {row}.{_q(hops[0][0])})"
    )
    return f"COALESCE({direct}, {_remembered(path, row, target)})"


def _postgres_paths(spec: Mapping, row: str) -> tuple[str, str]:
    """For a statement trigger's SELECT over the changed rows `row`: LEFT JOINs to the parent
    rows both paths go through (each parent joined once), and "person_id, site_id"."""
    aliases: dict[tuple, str] = {}
    joins = []

    def walk(path, target):
        if len(path) == 1:
            return f"{row}.{_q(path[0])}"
        previous, prefix = row, ()
        for fk, table in _hops(path):
            prefix += ((fk, table),)
            if prefix not in aliases:
                alias = aliases[prefix] = f"p{len(aliases) + 1}"
                joins.append(
                    f"LEFT JOIN {_name(table)} {alias} ON {alias}.id = {previous}.{_q(fk)}"
                )
            previous = aliases[prefix]
        first = aliases[prefix[:1]]
        return (
            f"CASE WHEN {first}.id IS NULL THEN {_remembered(path, row, target)} "
            f"ELSE {previous}.{_q(path[-1])} END"
        )

    where = f"{walk(spec['person'], 'person_id')}, {walk(spec['site'], 'site_id')}"
    return " ".join(joins), where


# --- PostgreSQL -----------------------------------------------------------------------------------

ACTOR_SETTING = "threshold.actor"
VIA_SETTING = "threshold.via"
COLUMNS = "table_name, row_id, person_id, site_id, operation, at, actor_id, via, changes"


def _pg_row_json(row: str, opaque: Sequence[str]) -> str:
    value = f"(to_jsonb({row}) - 'id')"
    for column in opaque:
        column = _name(column)
        value = (
            f"(({value} - '{column}') || "
            f"jsonb_build_object('{column}', length({row}.{_q(column)})))"
        )
    return value


def postgres_create(
    tables: Mapping[str, Mapping], *, schema: str, opaque: Mapping[str, Sequence[str]]
) -> list[str]:
    """Functions and triggers for `tables` (a frozen copy of AUDITED, and of OPAQUE). Generic
    over columns: to_jsonb(row) takes whatever columns the table has when the trigger runs."""
    statements = []
    search_path = f'pg_catalog, "{_name(schema)}", pg_temp'
    for table, spec in tables.items():
        table = _name(table)
        hidden = opaque.get(table, ())

        joins, where = _postgres_paths(spec, "r")

        def select(op: str, table=table, where=where) -> str:
            return (
                f"INSERT INTO {HISTORY_TABLE} ({COLUMNS}) SELECT '{table}', r.id, {where}, "
                f"'{op}', statement_timestamp(), v_actor, v_via"
            )

        statements.append(f"""
CREATE OR REPLACE FUNCTION clinic_history_{table}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {search_path} AS $$
DECLARE
    v_actor bigint := NULLIF(current_setting('{ACTOR_SETTING}', true), '')::bigint;
    v_via text := COALESCE(current_setting('{VIA_SETTING}', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        {select("insert")}, {_pg_row_json("r", hidden)} FROM new_rows r {joins}
        ORDER BY r.id;
    ELSIF TG_OP = 'DELETE' THEN
        {select("delete")}, {_pg_row_json("r", hidden)} FROM old_rows r {joins}
        ORDER BY r.id;
    ELSE
        {select("update")}, c.changes
        FROM old_rows o JOIN new_rows r ON r.id = o.id {joins}
        CROSS JOIN LATERAL (
            SELECT jsonb_object_agg(b.key, jsonb_build_array(b.value, a.value)) AS changes
            FROM jsonb_each({_pg_row_json("o", hidden)}) b
            JOIN jsonb_each({_pg_row_json("r", hidden)}) a ON a.key = b.key
            WHERE a.value IS DISTINCT FROM b.value
        ) c
        WHERE c.changes IS NOT NULL
        ORDER BY r.id;
    END IF;
    RETURN NULL;
END
$$""")
        for op, referencing in (
            ("insert", "NEW TABLE AS new_rows"),
            ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("delete", "OLD TABLE AS old_rows"),
        ):
            statements.append(
                f"CREATE TRIGGER clinic_history_{op} AFTER {op.upper()} ON {table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION clinic_history_{table}()"
            )
    return statements


def postgres_drop(tables: Mapping[str, Mapping]) -> list[str]:
    statements = []
    for table in tables:
        table = _name(table)
        for op in ("insert", "update", "delete"):
            statements.append(f"DROP TRIGGER IF EXISTS clinic_history_{op} ON {table}")
        statements.append(f"DROP FUNCTION IF EXISTS clinic_history_{table}()")
    return statements


POSTGRES_APPEND_ONLY = f"""
CREATE OR REPLACE FUNCTION {HISTORY_TABLE}_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the history of changes is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER {HISTORY_TABLE}_append_only
    BEFORE UPDATE OR DELETE ON {HISTORY_TABLE}
    FOR EACH ROW EXECUTE FUNCTION {HISTORY_TABLE}_append_only();
"""
POSTGRES_APPEND_ONLY_DROP = f"""
DROP TRIGGER IF EXISTS {HISTORY_TABLE}_append_only ON {HISTORY_TABLE};
DROP FUNCTION IF EXISTS {HISTORY_TABLE}_append_only();
"""


# --- SQLite -------------------------------------------------------------------------------------


def _sqlite_value(row: str, column: str, kind: str, *, opaque: bool) -> str:
    ref = f"{row}.{_q(column)}"
    if opaque:
        return f"length({ref})"
    if kind == BOOLEAN:
        return f"json(CASE WHEN {ref} IS NULL THEN NULL WHEN {ref} THEN 'true' ELSE 'false' END)"
    if kind == JSON:
        return f"json({ref})"
    if kind == DATETIME:
        return f"replace({ref}, ' ', 'T') || '+00:00'"
    return ref


def sqlite_create(
    tables: Mapping[str, Mapping],
    columns: Mapping[str, Sequence[tuple[str, str]]],
    *,
    opaque: Mapping[str, Sequence[str]],
) -> list[str]:
    """Row triggers for `tables`, with `columns[table]` = [(column, kind), ...] taken from the
    models as they are at the migration that runs this."""
    statements = []
    for table, spec in tables.items():
        table = _name(table)
        cols = [(c, kind) for c, kind in columns[table] if c != "id"]
        if len(cols) > SQLITE_MAX_COLUMNS:
            raise ValueError(f"{table} has too many columns for one json_object() call")
        hidden = set(opaque.get(table, ()))

        def value(row, column, kind, hidden=hidden):
            return _sqlite_value(row, column, kind, opaque=column in hidden)

        def insert(op: str, row: str, changes: str, spec=spec, table=table) -> str:
            return (
                f"INSERT INTO {HISTORY_TABLE} ({COLUMNS}) VALUES ('{table}', {row}.id, "
                f"{_sqlite_path(spec['person'], row, 'person_id')}, "
                f"{_sqlite_path(spec['site'], row, 'site_id')}, '{op}', "
                "strftime('%Y-%m-%d %H:%M:%f', 'now'), threshold_actor(), threshold_via(), "
                f"{changes});"
            )

        def whole(row, cols=cols, value=value) -> str:
            return "json_object(" + ", ".join(f"'{c}', {value(row, c, k)}" for c, k in cols) + ")"

        changed = " OR ".join(f"OLD.{_q(c)} IS NOT NEW.{_q(c)}" for c, _kind in cols)
        pairs = ", ".join(
            f"'{c}', CASE WHEN OLD.{_q(c)} IS NOT NEW.{_q(c)} THEN "
            f"json_array({value('OLD', c, k)}, {value('NEW', c, k)}) END"
            for c, k in cols
        )
        patch = f"json_patch(json_object(), json_object({pairs}))"
        statements += [
            f"CREATE TRIGGER clinic_history_{table}_insert AFTER INSERT ON {table} "
            f"BEGIN {insert('insert', 'NEW', whole('NEW'))} END",
            f"CREATE TRIGGER clinic_history_{table}_update AFTER UPDATE ON {table} "
            f"WHEN {changed} "
            f"BEGIN {insert('update', 'NEW', patch)} END",
            f"CREATE TRIGGER clinic_history_{table}_delete AFTER DELETE ON {table} "
            f"BEGIN {insert('delete', 'OLD', whole('OLD'))} END",
        ]
    return statements


def sqlite_drop(tables: Mapping[str, Mapping]) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS clinic_history_{_name(table)}_{op}"
        for table in tables
        for op in ("insert", "update", "delete")
    ]


SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER {HISTORY_TABLE}_no_{op.lower()} BEFORE {op} ON {HISTORY_TABLE}
    BEGIN SELECT RAISE(ABORT, 'the history of changes is append-only ({op} refused)'); END"""
    for op in ("UPDATE", "DELETE")
]
SQLITE_APPEND_ONLY_DROP = [
    f"DROP TRIGGER IF EXISTS {HISTORY_TABLE}_no_{op}" for op in ("update", "delete")
]


def column_kinds(apps, tables: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """[(column, kind), ...] of each table, from the models in `apps` (a migration's historical
    apps, or the project's own registry), auto-created many-to-many tables included."""
    from django.db import models

    by_table = {}
    for model in apps.get_models(include_auto_created=True):
        by_table[model._meta.db_table] = model
    kinds = {}
    for table in tables:
        fields = by_table[table]._meta.concrete_fields
        kinds[table] = [
            (
                field.column,
                BOOLEAN
                if isinstance(field, models.BooleanField)
                else JSON
                if isinstance(field, models.JSONField)
                else DATETIME
                if isinstance(field, models.DateTimeField)
                else OTHER,
            )
            for field in fields
        ]
    return kinds


def create_triggers(
    apps, schema_editor, tables: Mapping[str, Mapping], opaque: Mapping[str, Sequence[str]]
) -> None:
    """For a migration's RunPython: the history triggers of `tables`, on either database."""
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            schema = cursor.fetchone()[0]
        statements = postgres_create(tables, schema=schema, opaque=opaque)
    elif connection.vendor == "sqlite":
        statements = sqlite_create(tables, column_kinds(apps, list(tables)), opaque=opaque)
    else:
        return
    for statement in statements:
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor, tables: Mapping[str, Mapping]) -> None:
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": postgres_drop, "sqlite": sqlite_drop}.get(vendor)
    for statement in statements(tables) if statements else ():
        schema_editor.execute(statement, params=None)


def recreate_sqlite_triggers(
    apps,
    schema_editor,
    tables: Mapping[str, Mapping] = AUDITED,
    opaque: Mapping[str, Sequence[str]] = OPAQUE,
):
    """For a later migration that rebuilt an audited table on SQLite (which drops its
    triggers) or added a column to one: the SQLite triggers again, with today's columns.
    PostgreSQL needs nothing (its triggers take whatever columns the table has)."""
    if schema_editor.connection.vendor != "sqlite":
        return
    drop_triggers(apps, schema_editor, tables)
    create_triggers(apps, schema_editor, tables, opaque)


# --- who: the acting staff member ----------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who is changing things: a staff account's id (None: nobody known), and through what:
    "web" for a request, a command's name, "" when nothing said."""

    user_id: int | None = None
    via: str = ""


NOBODY = Actor()
_UNKNOWN = object()  # what a connection was told is not known (set inside a transaction)
_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("threshold_actor", default=NOBODY)


def current_actor() -> Actor:
    return _actor.get()


@contextmanager
def history_actor(user=None, *, via: str) -> Iterator[Actor]:
    """Changes made inside are recorded as made by `user` (a staff account, or None) through
    `via` (e.g. "import_visits"). Nests; the previous actor comes back on the way out, also
    when the block raises."""
    actor = Actor(user_id=getattr(user, "pk", user), via=via[:40])
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def history_command(handle):
    """Decorator for a management command's handle(): what it changes is recorded as done by
    that command (e.g. "import_visits"), by no staff member unless it says who inside."""

    @wraps(handle)
    def wrapped(self, *args, **options):
        with history_actor(None, via=type(self).__module__.rsplit(".", 1)[-1]):
            return handle(self, *args, **options)

    return wrapped


class HistoryActorMiddleware:
    """Every change a request makes is recorded as made by its signed-in staff member. After
    AuthenticationMiddleware (and the second factor's) in MIDDLEWARE."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        with history_actor(user.pk if signed_in else None, via="web"):
            return self.get_response(request)


# Statements that cannot write: no need to tell the database who is acting first.
_READS = re.compile(r"^\s*(SELECT|SAVEPOINT|RELEASE|ROLLBACK|SHOW|SET|BEGIN|COMMIT)\b", re.I)


def _postgres_tell(execute, sql, params, many, context):
    db = context["connection"]
    actor = _actor.get()
    may_write = not (isinstance(sql, str) and _READS.match(sql))
    if may_write and actor != getattr(db, "_history_actor", _UNKNOWN):
        # The driver's own cursor: not a query of the application's (nothing counts or logs it).
        context["cursor"].cursor.execute(
            "SELECT set_config(%s, %s, false), set_config(%s, %s, false)",
            [
                ACTOR_SETTING,
                "" if actor.user_id is None else str(actor.user_id),
                VIA_SETTING,
                actor.via,
            ],
        )
        # A setting made inside a transaction is undone if it rolls back: remember it only
        # when it was made outside one.
        db._history_actor = _UNKNOWN if db.in_atomic_block else actor
    return execute(sql, params, many, context)


def connection_created(sender, connection, **kwargs):
    """Teach every new database connection who is acting (see the module docstring)."""
    if connection.vendor == "sqlite":
        raw = connection.connection
        raw.create_function("threshold_actor", 0, lambda: _actor.get().user_id)
        raw.create_function("threshold_via", 0, lambda: _actor.get().via)
    elif connection.vendor == "postgresql":
        # Not known: a connection from a pool may be a session that still holds another's.
        connection._history_actor = _UNKNOWN
        if _postgres_tell not in connection.execute_wrappers:
            # First in line, so a test's own execute_wrapper() popping its wrapper keeps ours.
            connection.execute_wrappers.insert(0, _postgres_tell)


# --- reading it back --------------------------------------------------------------------------


@cache
def audited_model(table: str):
    """The model (auto-created many-to-many tables included) whose table is `table`."""
    from django.apps import apps

    for model in apps.get_models(include_auto_created=True):
        if model._meta.db_table == table:
            return model
    return None


def decoded_changes(entry) -> dict[str, tuple]:
    """A history row's changes as {column: (before, after)} in Python values, the same on
    both databases: None before an INSERT and after a DELETE; lengths for opaque columns."""
    from django.db import models

    model = audited_model(entry.table_name)
    fields = {f.column: f for f in model._meta.concrete_fields} if model else {}
    hidden = OPAQUE.get(entry.table_name, ())

    def value(column, raw):
        field = fields.get(column)
        if raw is None or field is None or column in hidden or isinstance(field, models.JSONField):
            return raw
        if field.is_relation:
            field = field.target_field
        return field.to_python(raw)

    pairs = {}
    for column, raw in entry.changes.items():
        if entry.operation == "update":
            before, after = raw
        elif entry.operation == "insert":
            before, after = None, raw
        else:
            before, after = raw, None
        pairs[column] = (value(column, before), value(column, after))
    return pairs
