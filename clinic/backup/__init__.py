"""Backups and restore: one archive per backup, checked in full before anything is restored.

An archive is one uncompressed tar file, ``threshold-backup-YYYYMMDDTHHMMSSZ.tar`` (UTC):

    database.sqlite3   SQLite: an online copy (sqlite3's backup API), never a file copy
    database.pgdump    PostgreSQL: pg_dump --format=custom, with ownership, grants and triggers
    media/...          every uploaded file under MEDIA_ROOT (scanned signed consent forms)
    manifest.json      what it is: format version, when, engine, applied migrations, rows per
                       table, triggers (and owners and grants on PostgreSQL), and the SHA-256
                       and size of every other member

One file rather than a directory: a backup is copied off the machine, encrypted, checked and
deleted as one thing, so a half-copied backup is never mistaken for a whole one. Uncompressed,
because a custom-format dump and scanned forms are compressed already, and so that any member
can be read without unpacking the rest.

Nothing is half-written: the archive is written under a hidden ``.partial`` name beside where
it goes and renamed at the very end, so a backup that fails leaves nothing that looks like a
backup; a restore refuses before it writes anything if the archive does not match its manifest
or the target is not empty. Files are 0600 and directories 0700: an archive holds health
records.

Nothing here prints or logs a person's details: only paths, sizes, counts, table and trigger
names, and what the database tools say without the lines in which they quote data.
"""

from clinic.backup.common import (
    ENGINE_NAME,
    BackupError,
    BackupResult,
    RestoreResult,
    archive_stats,
    human_size,
    plural,
)
from clinic.backup.services import backup_check, backup_create, backup_restore

__all__ = [
    "ENGINE_NAME",
    "BackupError",
    "BackupResult",
    "RestoreResult",
    "archive_stats",
    "backup_check",
    "backup_create",
    "backup_restore",
    "human_size",
    "plural",
]
