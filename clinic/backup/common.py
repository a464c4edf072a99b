"""What the parts of a backup share: the archive's names, errors, results, small file helpers."""

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

FORMAT = "threshold-backup"
FORMAT_VERSION = 1
PREFIX = "threshold-backup-"
MANIFEST = "manifest.json"
MEDIA = "media"
DATABASE_MEMBER = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
ENGINE_NAME = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go on. `code` is for programs, `message` for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    sha256: str
    manifest: dict


@dataclass
class RestoreResult:
    manifest: dict
    media_written: int = 0
    media_present: int = 0
    moved_aside: Path | None = None
    notes: list[str] = field(default_factory=list)


def engine_of(database: Mapping) -> str:
    engine = database.get("ENGINE") or ""
    if engine.endswith("sqlite3"):
        return "sqlite"
    if engine.endswith("postgresql"):
        return "postgresql"
    raise BackupError("engine", f"Backups support SQLite and PostgreSQL, not {engine!r}.")


def archive_stats(manifest: Mapping) -> tuple[int, int, int]:
    """(tables, rows, uploaded files) of an archive, from its manifest."""
    media = sum(1 for name in manifest["files"] if name.startswith(f"{MEDIA}/"))
    return len(manifest["tables"]), sum(manifest["tables"].values()), media


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def human_size(size: float) -> str:
    if size < 1000:
        return f"{int(size)} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            break
    return f"{size:.1f} {unit}"


class Hashing:
    """A reader that hashes what is read through it."""

    def __init__(self, source: BinaryIO):
        self._source = source
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._hash.update(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def os_errors(doing: str) -> Iterator[None]:
    """A file that cannot be read or written (a full disk, a permission) as a BackupError."""
    try:
        yield
    except OSError as exc:
        raise BackupError("os_error", f"{doing} failed: {exc}") from exc


def make_directories(path: Path) -> None:
    """`path` and any missing parents, each 0700 (mkdir(parents=True) would make the
    parents with the default mode)."""
    if path.is_dir():
        return
    make_directories(path.parent)
    path.mkdir(mode=0o700, exist_ok=True)


def fsync_directory(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
