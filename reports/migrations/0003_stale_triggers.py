"""Triggers that note, in reports_stale, what each change to the clinical tables makes stale
in the report summaries (reports.summaries explains the whole scheme).

A trigger only records *what* changed (a person, or a site's day), in the same transaction as
the change; the summaries themselves are rebuilt later, in bulk, by `summaries.refresh()`.
So a check-in or a visit pays one small insert, and every way of writing (the services, the
admin, imports, raw SQL) is covered without each having to remember.

PostgreSQL: statement-level triggers with transition tables, so a COPY or a bulk insert of a
million rows writes one set of marks per statement, not one per row. SQLite has row-level
triggers only; its databases are small.

Everything already in the database is marked stale at the end, so the next refresh builds
the summaries for it.
"""

from django.db import migrations

# Per clinical table: the columns the marks read, and the marks. A mark is a SELECT of
# (person_id, site_id, day) from the changed rows `{rows}` (aliased r), and the columns whose
# change matters to it on UPDATE.
TABLES = {
    "visits_visit": {
        "columns": ("id", "site_id", "person_id", "day", "opened_by_id", "arrival_id",
                    "started_at"),
        "marks": (
            ("SELECT r.person_id, {null_id}, {null_day} FROM {rows} r "
             "WHERE r.person_id IS NOT NULL",
             ("site_id", "person_id", "day", "opened_by_id", "arrival_id", "started_at")),
            ("SELECT {null_id}, r.site_id, r.day FROM {rows} r",
             ("site_id", "person_id", "day")),
        ),
    },
    "visits_medicationevent": {
        "columns": ("id", "visit_id", "days_supply"),
        "marks": (
            ("SELECT v.person_id, {null_id}, {null_day} FROM {rows} r "
             "JOIN visits_visit v ON v.id = r.visit_id WHERE v.person_id IS NOT NULL",
             ("visit_id", "days_supply")),
        ),
    },
    "visits_visit_services": {
        "columns": ("id", "visit_id", "service_id"),
        "marks": (
            ("SELECT v.person_id, {null_id}, {null_day} FROM {rows} r "
             "JOIN visits_visit v ON v.id = r.visit_id WHERE v.person_id IS NOT NULL",
             ("visit_id", "service_id")),
            ("SELECT {null_id}, v.site_id, v.day FROM {rows} r "
             "JOIN visits_visit v ON v.id = r.visit_id WHERE v.person_id IS NULL",
             ("visit_id", "service_id")),
        ),
    },
    "queue_arrival": {
        "columns": ("id", "site_id", "day", "state", "person_id", "appointment_at",
                    "arrived_at", "import_key"),
        "marks": (
            ("SELECT {null_id}, r.site_id, r.day FROM {rows} r",
             ("site_id", "day", "state", "person_id", "appointment_at")),
            # The wait of the visit that came from this arrival.
            ("SELECT v.person_id, {null_id}, {null_day} FROM {rows} r "
             "JOIN visits_visit v ON v.arrival_id = r.id WHERE v.person_id IS NOT NULL",
             ("arrived_at", "import_key")),
        ),
    },
}

INSERT = "INSERT INTO reports_stale (person_id, site_id, day) "


def _changed(watched, old, new) -> str:
    return " OR ".join(f"{old}.{c} IS DISTINCT FROM {new}.{c}" for c in watched)


def _postgres_create() -> list[str]:
    statements = []
    nulls = {"null_id": "NULL::bigint", "null_day": "NULL::date"}
    for table, spec in TABLES.items():
        inserted = " UNION ALL ".join(
            sql.format(rows="new_rows", **nulls) for sql, _ in spec["marks"]
        )
        deleted = " UNION ALL ".join(
            sql.format(rows="old_rows", **nulls) for sql, _ in spec["marks"]
        )
        updated = []
        for sql, watched in spec["marks"]:
            for side in ("o", "n"):
                rows = (
                    f"(SELECT {side}.* FROM old_rows o JOIN new_rows n ON n.id = o.id "
                    f"WHERE {_changed(watched, 'o', 'n')})"
                )
                updated.append(sql.format(rows=rows, **nulls))
        updated_sql = " UNION ALL ".join(updated)
        statements.append(f"""
CREATE OR REPLACE FUNCTION reports_stale_{table}() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {INSERT} SELECT DISTINCT * FROM ({inserted}) AS marks;
    ELSIF TG_OP = 'DELETE' THEN
        {INSERT} SELECT DISTINCT * FROM ({deleted}) AS marks;
    ELSE
        {INSERT} SELECT DISTINCT * FROM ({updated_sql}) AS marks;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql""")
        for event, referencing in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            statements.append(
                f"CREATE TRIGGER reports_stale_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION reports_stale_{table}()"
            )
    return statements


def _postgres_drop() -> list[str]:
    statements = []
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            statements.append(f"DROP TRIGGER IF EXISTS reports_stale_{event} ON {table}")
        statements.append(f"DROP FUNCTION IF EXISTS reports_stale_{table}()")
    return statements


def _sqlite_names():
    for table, spec in TABLES.items():
        for i, _ in enumerate(spec["marks"]):
            for event in ("insert", "update", "delete"):
                yield table, i, event, f"reports_stale_{table}_{i}_{event}"


def _sqlite_create() -> list[str]:
    statements = []
    nulls = {"null_id": "NULL", "null_day": "NULL"}
    for table, i, event, name in _sqlite_names():
        spec = TABLES[table]
        sql, watched = spec["marks"][i]

        def rows(side, columns=spec["columns"]):
            return "(SELECT " + ", ".join(f"{side}.{c} AS {c}" for c in columns) + ")"

        if event == "insert":
            body = INSERT + sql.format(rows=rows("NEW"), **nulls) + ";"
            head = f"AFTER INSERT ON {table}"
        elif event == "delete":
            body = INSERT + sql.format(rows=rows("OLD"), **nulls) + ";"
            head = f"AFTER DELETE ON {table}"
        else:
            changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
            body = (
                INSERT + sql.format(rows=rows("OLD"), **nulls) + "; "
                + INSERT + sql.format(rows=rows("NEW"), **nulls) + ";"
            )
            head = f"AFTER UPDATE OF {', '.join(watched)} ON {table} WHEN {changed}"
        statements.append(f"CREATE TRIGGER {name} {head} BEGIN {body} END")
    return statements


def _sqlite_drop() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {name}" for *_, name in _sqlite_names()]


MARK_EVERYTHING = (
    "INSERT INTO reports_stale (person_id) SELECT DISTINCT person_id FROM visits_visit "
    "WHERE person_id IS NOT NULL",
    "INSERT INTO reports_stale (site_id, day) SELECT site_id, day FROM visits_visit "
    "UNION SELECT site_id, day FROM queue_arrival",
)


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": _postgres_create, "sqlite": _sqlite_create}[vendor]()
    for statement in [*statements, *MARK_EVERYTHING]:
        schema_editor.execute(statement, params=None)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": _postgres_drop, "sqlite": _sqlite_drop}[vendor]():
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0002_summaries"),
        ("visits", "0004_report_indexes"),
        ("queue", "0003_report_indexes"),
    ]

    operations = [migrations.RunPython(create, drop)]
