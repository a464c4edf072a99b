"""SQLite: an online copy with SQLite's backup API, and a restore that renames a checked copy
into place."""

import os
import sqlite3
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from clinic.backup.archive import compare, extract
from clinic.backup.common import BackupError, fsync_directory, make_directories


def path_of(database: Mapping) -> Path:
    name = str(database.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        raise BackupError("sqlite_memory", "The SQLite database is not a file; nothing to do.")
    return Path(name)


def connect(path: Path, *, mode: str) -> sqlite3.Connection:
    # A URI with a mode: a plain connect would create an empty database where there is none.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=20)


def dump(database: Mapping, target: Path) -> dict:
    source_path = path_of(database)
    if not source_path.is_file():
        raise BackupError("no_database", f"There is no SQLite database at {source_path}.")
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = connect(source_path, mode="rw")
    copy = sqlite3.connect(target)
    try:
        # All pages in one step: one read transaction, so the copy is consistent and never
        # starts over because the clinic wrote meanwhile (page by page, it would).
        source.backup(copy)
        source.close()
        # The copy stands alone: one file, no -wal or -shm beside it. The application turns
        # WAL back on when it connects to a restored copy.
        copy.execute("PRAGMA journal_mode=DELETE")
        check_integrity(copy)
        facts = catalog(copy)
    finally:
        source.close()
        copy.close()
    facts["database"] = {"file": target.name, "sqlite_version": sqlite3.sqlite_version}
    return facts


def check_integrity(connection: sqlite3.Connection) -> None:
    result = connection.execute("PRAGMA integrity_check").fetchall()
    if result != [("ok",)]:
        raise BackupError(
            "sqlite_damaged",
            f"The database fails SQLite's integrity check ({len(result)} problems).",
        )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def catalog(connection: sqlite3.Connection) -> dict:
    """Tables with their row counts, triggers and applied migrations."""
    tables = [
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name"
        )
    ]
    counts = {
        name: connection.execute(f"SELECT count(*) FROM {_ident(name)}").fetchone()[0]  # noqa: S608
        for name in tables
    }
    triggers = [
        list(row)
        for row in connection.execute(
            "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' ORDER BY 1, 2"
        )
    ]
    migrations = []
    if "django_migrations" in counts:
        migrations = [
            f"{app}.{name}"
            for app, name in connection.execute(
                "SELECT app, name FROM django_migrations ORDER BY id"
            )
        ]
    return {"tables": counts, "triggers": triggers, "migrations": migrations}


def check_copy(copy: Path, manifest: Mapping) -> list[str]:
    connection = connect(copy, mode="ro")
    try:
        check_integrity(connection)
        problems = compare(manifest, catalog(connection))
    finally:
        connection.close()
    if problems:
        raise BackupError(
            "counts_differ", "The database in the archive differs from its manifest: " + problems
        )
    return [
        "The database passes SQLite's integrity check and holds the rows, triggers and "
        "migrations the manifest lists."
    ]


def files_of(target: Path) -> list[Path]:
    """The database file and the files SQLite keeps beside it, where they exist."""
    candidates = [target] + [
        target.with_name(target.name + s) for s in ("-wal", "-shm", "-journal")
    ]
    return [path for path in candidates if path.exists() or path.is_symlink()]


def restore(tar, info, expected: str, target: Path, existing: list[Path]) -> Path | None:
    make_directories(target.parent)
    fd, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".restoring"
    )
    try:
        with os.fdopen(fd, "wb") as out:
            extract(tar, info, expected, out)
        connection = connect(Path(temporary), mode="ro")
        try:
            check_integrity(connection)
        finally:
            connection.close()
        aside = None
        if existing:
            # Together, with its -wal and -shm: a database file without its WAL loses what
            # was last written, and a stale WAL beside a restored file would damage it.
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            aside = target.with_name(f"{target.name}.before-restore-{stamp}")
            aside.mkdir(mode=0o700)
            for path in existing:
                path.rename(aside / path.name)
        os.rename(temporary, target)
        fsync_directory(target.parent)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return aside
