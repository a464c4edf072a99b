"""The archive: writing it, reading it back, and checking it against its manifest."""

import io
import json
import os
import re
import tarfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from clinic.backup.common import (
    CHUNK,
    DATABASE_MEMBER,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MEDIA,
    BackupError,
    Hashing,
    plural,
)

MANIFEST_MAX = 64 * 1024 * 1024


def media_files(media_root: Path, *, skip: tuple[Path, ...]) -> Iterator[tuple[str, Path]]:
    """(member name, path) of every regular file under `media_root`, in a stable order.
    Symbolic links are not followed: an upload is a file Django wrote there."""
    if not media_root.is_dir():
        return
    skipped = {path.resolve() for path in skip}
    for directory, subdirectories, files in os.walk(media_root):
        here = Path(directory)
        subdirectories[:] = sorted(d for d in subdirectories if (here / d).resolve() not in skipped)
        for name in sorted(files):
            path = here / name
            if path.is_symlink() or not path.is_file():
                continue
            yield f"{MEDIA}/{path.relative_to(media_root).as_posix()}", path


def write_archive(partial: Path, *, members: list, manifest: dict) -> dict:
    """Write `members` and then the manifest (with every member's SHA-256) into a new tar at
    `partial`; return the manifest as written."""
    files = {}
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in members:
                with open(path, "rb") as source:
                    size = os.fstat(source.fileno()).st_size
                    reader = Hashing(source)
                    # The hash is of the bytes read into the archive, so it matches them even
                    # if the file changed since.
                    tar.addfile(_tar_info(name, size, os.path.getmtime(path)), reader)
                files[name] = {"sha256": reader.hexdigest(), "size": size}
            manifest = {**manifest, "files": files}
            body = (json.dumps(manifest, indent=2) + "\n").encode()
            tar.addfile(_tar_info(MANIFEST, len(body), time.time()), io.BytesIO(body))
        raw.flush()
        os.fsync(raw.fileno())
    return manifest


def _tar_info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o600
    info.uname = info.gname = ""
    return info


@contextmanager
def open_archive(path: Path) -> Iterator[tuple[tarfile.TarFile, dict, dict]]:
    """The archive's tar, its members by name and its manifest, with the archive's shape
    checked (plain files under the expected names, each once; a manifest we can read).
    The hashes are checked by `verify`."""
    path = Path(path)
    if not path.is_file():
        raise BackupError("no_archive", f"There is no archive at {path}.")
    try:
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed by the `with` below)
    except (tarfile.TarError, OSError):
        raise BackupError("not_archive", f"{path} is not a backup archive.") from None
    with tar:
        members: dict[str, tarfile.TarInfo] = {}
        try:
            infos = tar.getmembers()
        except (tarfile.TarError, OSError):
            raise BackupError("not_archive", f"{path} is damaged: it cannot be read.") from None
        for info in infos:
            if not info.isreg() or not _safe_member_name(info.name) or info.name in members:
                raise BackupError(
                    "tampered",
                    "The archive holds something a backup never does (not a plain file, an "
                    "unexpected name, or a name twice). Nothing was restored.",
                )
            members[info.name] = info
        if MANIFEST not in members:
            raise BackupError("not_archive", f"{path} has no {MANIFEST}: it is not a backup.")
        if members[MANIFEST].size > MANIFEST_MAX:
            raise BackupError("bad_manifest", f"The archive's {MANIFEST} is far too large.")
        try:
            manifest = json.loads(tar.extractfile(members[MANIFEST]).read())
        except (ValueError, tarfile.TarError, OSError):
            raise BackupError("bad_manifest", f"The archive's {MANIFEST} is unreadable.") from None
        _check_manifest(manifest)
        yield tar, members, manifest


def _safe_member_name(name: str) -> bool:
    path = PurePosixPath(name)
    if path.is_absolute() or "\\" in name or "\x00" in name:
        return False
    if any(part in ("", ".", "..") for part in name.split("/")):
        return False
    if name == MANIFEST or name in DATABASE_MEMBER.values():
        return True
    return len(path.parts) > 1 and path.parts[0] == MEDIA


def _check_manifest(manifest) -> None:
    def bad(what: str):
        raise BackupError("bad_manifest", f"The archive's {MANIFEST} {what}.")

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        bad("is not a Threshold backup manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        bad("has no format version")
    if version > FORMAT_VERSION:
        raise BackupError(
            "newer_format",
            f"This archive has format version {version}, made by a newer Threshold; this one "
            f"reads up to version {FORMAT_VERSION}. Restore it with the newer version.",
        )
    engine = manifest.get("engine")
    if engine not in DATABASE_MEMBER:
        bad("names no database engine Threshold knows")
    files = manifest.get("files")
    if not isinstance(files, dict) or DATABASE_MEMBER[engine] not in files:
        bad("does not list the database")
    for name, entry in files.items():
        if (
            not _safe_member_name(name)
            or name == MANIFEST
            or (name in DATABASE_MEMBER.values() and name != DATABASE_MEMBER[engine])
            or not isinstance(entry, dict)
            or not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256")))
            or not isinstance(entry.get("size"), int)
        ):
            bad("lists a file wrongly")
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or not all(isinstance(n, int) for n in tables.values()):
        bad("has no row counts")
    if not isinstance(manifest.get("migrations"), list):
        bad("has no migrations")
    lists = ["triggers", "owners", "grants"] if engine == "postgresql" else ["triggers"]
    for key in lists:
        value = manifest.get(key)
        if not isinstance(value, list) or not all(
            isinstance(row, list) and all(isinstance(x, str) for x in row) for row in value
        ):
            bad(f"has no {key}")
    if engine == "postgresql":
        roles = (manifest.get("database") or {}).get("roles")
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            bad("does not list the database roles")
    if not isinstance(manifest.get("created_at"), str):
        bad("does not say when it was made")


def _describe(names) -> str:
    names = sorted(names)
    media = sum(1 for name in names if name.startswith(f"{MEDIA}/"))
    # Uploaded files are named at random, but are described by number all the same.
    parts = [name for name in names if not name.startswith(f"{MEDIA}/")]
    if media:
        parts.append(plural(media, "uploaded file"))
    return ", ".join(parts)


def verify(tar: tarfile.TarFile, members: Mapping, manifest: Mapping) -> None:
    """Every member listed, none more, each with the listed size and SHA-256."""
    listed = set(manifest["files"])
    present = set(members) - {MANIFEST}
    problems = []
    if listed - present:
        problems.append(f"missing: {_describe(listed - present)}")
    if present - listed:
        problems.append(f"not in the manifest: {_describe(present - listed)}")
    changed = []
    for name in sorted(listed & present):
        expected = manifest["files"][name]
        if members[name].size != expected["size"]:
            changed.append(name)
            continue
        try:
            with tar.extractfile(members[name]) as member:
                reader = Hashing(member)
                while reader.read(CHUNK):
                    pass
        except (tarfile.TarError, OSError):
            changed.append(name)
            continue
        if reader.hexdigest() != expected["sha256"]:
            changed.append(name)
    if changed:
        problems.append(f"different from their SHA-256 in the manifest: {_describe(changed)}")
    if problems:
        raise BackupError(
            "tampered",
            "The archive does not match its manifest (" + "; ".join(problems) + "). It has "
            "been damaged or changed since it was made. Nothing was restored.",
        )


def extract(tar: tarfile.TarFile, info: tarfile.TarInfo, expected: str, out: BinaryIO) -> None:
    """Copy a member into `out`, checking its SHA-256 again on the way."""
    with tar.extractfile(info) as member:
        reader = Hashing(member)
        while chunk := reader.read(CHUNK):
            out.write(chunk)
    out.flush()
    os.fsync(out.fileno())
    if reader.hexdigest() != expected:
        raise BackupError(
            "tampered", "The archive changed while it was being restored. Nothing more was done."
        )


def compare(manifest: Mapping, found: Mapping) -> str:
    """How a database differs from the manifest ("" when it does not)."""
    problems = []
    expected, actual = manifest["tables"], found["tables"]
    if set(expected) - set(actual):
        problems.append(f"tables missing: {', '.join(sorted(set(expected) - set(actual)))}")
    if set(actual) - set(expected):
        problems.append(
            f"tables not in the backup: {', '.join(sorted(set(actual) - set(expected)))}"
        )
    problems += [
        f"{table} has {actual[table]} rows, not {rows}"
        for table, rows in sorted(expected.items())
        if table in actual and actual[table] != rows
    ]
    for key, what in (
        ("triggers", "triggers"),
        ("owners", "owners"),
        ("grants", "grants"),
        ("migrations", "applied migrations"),
    ):
        if key not in manifest:
            continue
        want = {tuple(x) if isinstance(x, list) else x for x in manifest[key]}
        have = {tuple(x) if isinstance(x, list) else x for x in found[key]}
        if want - have:
            problems.append(f"{len(want - have)} {what} missing")
        if have - want:
            problems.append(f"{len(have - want)} {what} not in the backup")
    return "; ".join(problems)
