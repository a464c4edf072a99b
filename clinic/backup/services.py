"""The three services: backup_create, backup_check and backup_restore."""

import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from clinic.backup import postgres, sqlite
from clinic.backup.archive import compare, extract, media_files, open_archive, verify, write_archive
from clinic.backup.common import (
    DATABASE_MEMBER,
    ENGINE_NAME,
    FORMAT,
    FORMAT_VERSION,
    MEDIA,
    PREFIX,
    BackupError,
    BackupResult,
    RestoreResult,
    engine_of,
    fsync_directory,
    make_directories,
    os_errors,
    plural,
    sha256_of,
)


def backup_create(
    *, to: Path, database: Mapping, media_root: Path, now: datetime | None = None
) -> BackupResult:
    """Write one archive of `database` (a Django DATABASES entry) and of every file under
    `media_root` into the directory `to`, or nothing at all.

    Safe while the clinic is running. SQLite is copied with its online backup API in one read
    transaction, which in WAL mode never holds up the clinic's writes. PostgreSQL is dumped
    from one exported snapshot, the same one the manifest's row counts are read in, so the
    two agree however busy the clinic is; pg_dump takes only the share locks any reader takes.
    The database is copied before the uploads: a file a copied row names was saved before that
    row was committed, so it is there when the uploads are copied.
    """
    with os_errors("Writing the backup"):
        return _backup_create(to=Path(to), database=database, media_root=media_root, now=now)


def _backup_create(*, to: Path, database: Mapping, media_root: Path, now) -> BackupResult:
    engine = engine_of(database)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    make_directories(to)
    final = to / f"{PREFIX}{now:%Y%m%dT%H%M%SZ}.tar"
    if final.exists():
        raise BackupError("exists", f"{final} already exists; nothing was written.")
    partial = to / f".{final.name}.partial"
    work = Path(tempfile.mkdtemp(prefix=".threshold-backup-", dir=to))
    try:
        dump = work / DATABASE_MEMBER[engine]
        facts = sqlite.dump(database, dump) if engine == "sqlite" else postgres.dump(database, dump)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "engine": engine,
            "database": facts.pop("database"),
            "migrations": facts.pop("migrations"),
            **facts,
        }
        members = [(dump.name, dump), *media_files(Path(media_root), skip=(to, work))]
        manifest = write_archive(partial, members=members, manifest=manifest)
        os.rename(partial, final)
        fsync_directory(to)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = final.stat().st_size
    return BackupResult(path=final, size=size, sha256=sha256_of(final), manifest=manifest)


def backup_check(*, archive: Path) -> tuple[dict, list[str]]:
    """Check an archive without restoring it: its shape, every SHA-256, and that the database
    in it can be read. Returns the manifest and what was checked beyond the hashes."""
    with os_errors("Checking the archive"), open_archive(archive) as (tar, members, manifest):
        verify(tar, members, manifest)
        name = DATABASE_MEMBER[manifest["engine"]]
        with tempfile.TemporaryDirectory(prefix="threshold-check-") as work:
            copy = Path(work) / name
            with open(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                extract(tar, members[name], manifest["files"][name]["sha256"], out)
            if manifest["engine"] == "sqlite":
                notes = sqlite.check_copy(copy, manifest)
            else:
                notes = postgres.check_dump(copy, manifest)
    return manifest, notes


def backup_restore(
    *, archive: Path, database: Mapping, media_root: Path, force: bool = False
) -> RestoreResult:
    """Restore an archive into a fresh database (`database`, a Django DATABASES entry) and
    its uploads into `media_root`.

    In this order, refusing before anything is written: the archive's shape and every SHA-256;
    the engine; the target (SQLite: no database file there unless `force`, which moves the old
    one aside; PostgreSQL: a database with no tables, on a server that has every role the dump
    names); no upload in `media_root` that differs from the backup's. Then the uploads
    (identical files already there are left alone, so a restore that failed later can be run
    again), then the database (SQLite: renamed into place whole; PostgreSQL: pg_restore in one
    transaction), then its rows, triggers, owners, grants and migrations are compared with the
    manifest. Locks nothing: run it with the clinic's service stopped.
    """
    with os_errors("Restoring"):
        return _backup_restore(
            archive=archive, database=database, media_root=media_root, force=force
        )


def _backup_restore(*, archive, database, media_root, force) -> RestoreResult:
    engine = engine_of(database)
    media_root = Path(media_root)
    with open_archive(archive) as (tar, members, manifest):
        verify(tar, members, manifest)
        if manifest["engine"] != engine:
            raise BackupError(
                "engine_mismatch",
                f"This is a backup of a {ENGINE_NAME[manifest['engine']]} database, and the "
                f"database configured here is {ENGINE_NAME[engine]}. Nothing was restored. "
                "Restore it into the same kind of database.",
            )
        result = RestoreResult(manifest=manifest)
        if engine == "sqlite":
            target = sqlite.path_of(database)
            existing = sqlite.files_of(target)
            if existing and not force:
                raise BackupError(
                    "exists",
                    f"There is already a database at {target}. Nothing was restored. Use "
                    "--force to move it aside first (with its -wal and -shm files).",
                )
        else:
            params = postgres.params_of(database)
            pg_restore = postgres.tool("pg_restore")
            result.notes += postgres.preflight(params, manifest)
        plan = _media_plan(tar, members, manifest, media_root)

        result.media_written, result.media_present = _media_restore(tar, members, manifest, plan)
        name = DATABASE_MEMBER[engine]
        expected = manifest["files"][name]["sha256"]
        if engine == "sqlite":
            result.moved_aside = sqlite.restore(tar, members[name], expected, target, existing)
            connection = sqlite.connect(target, mode="ro")
            try:
                found = sqlite.catalog(connection)
            finally:
                connection.close()
        else:
            postgres.restore(tar, members[name], expected, params, pg_restore)
            with postgres.connect(params) as connection, postgres.errors("checking the restore"):
                found = postgres.catalog(connection)
    problems = compare(manifest, found)
    if problems:
        raise BackupError(
            "counts_differ",
            f"The database was restored, but it differs from the archive's manifest: {problems}",
        )
    return result


def _media_plan(tar, members, manifest, media_root: Path) -> list[tuple[str, Path]]:
    """(member, destination) of the uploads to write; refuses if any file already there
    differs from the backup's."""
    plan, conflicts = [], 0
    for name in sorted(manifest["files"]):
        if not name.startswith(f"{MEDIA}/"):
            continue
        destination = media_root.joinpath(*PurePosixPath(name).parts[1:])
        if destination.is_symlink() or (
            destination.exists()
            and (
                not destination.is_file()
                or sha256_of(destination) != manifest["files"][name]["sha256"]
            )
        ):
            conflicts += 1
        plan.append((name, destination))
    if conflicts:
        raise BackupError(
            "media_conflict",
            f"{plural(conflicts, 'uploaded file')} in {media_root} differ from the "
            "backup's under the same name. Nothing was restored. Restore into an "
            "empty MEDIA_ROOT, or move those files away first.",
        )
    return plan


def _media_restore(tar, members, manifest, plan) -> tuple[int, int]:
    written = present = 0
    for name, destination in plan:
        if destination.exists():
            present += 1
            continue
        make_directories(destination.parent)
        fd, temporary = tempfile.mkstemp(
            dir=destination.parent, prefix=f".{destination.name}.", suffix=".restoring"
        )
        try:
            with os.fdopen(fd, "wb") as out:
                extract(tar, members[name], manifest["files"][name]["sha256"], out)
            os.rename(temporary, destination)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written += 1
    return written, present
