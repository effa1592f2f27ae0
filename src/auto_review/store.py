"""SQLite state: one database file, WAL, busy timeout, foreign keys, numbered migrations.

``Store`` owns every connection. Writers go through ``write()``, which serialises them behind a
lock and an immediate transaction; readers use ``read()``, which opens the file read-only.
Migrations are the ``NNNN_name.sql`` files of ``auto_review/migrations``, applied in order at
open and recorded in ``schema_migrations``. A corrupt database, or one written by a newer build,
is refused with ``StoreSchemaError``; it is never recreated. Only this module sees ``sqlite3``
errors: they leave as ``StoreError`` with the cause chained.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from auto_review.errors import StoreError, StoreSchemaError

__all__ = ["DATABASE_NAME", "MEMORY", "Migration", "Store", "known_migrations"]

DATABASE_NAME = "auto-review.sqlite3"
MEMORY = ":memory:"
BUSY_TIMEOUT_MS = 5000

_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def known_migrations() -> tuple[Migration, ...]:
    """The migrations shipped with this build, in order."""
    found = []
    for entry in resources.files("auto_review.migrations").iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StoreSchemaError("two migrations share a number; this build is broken")
    return tuple(found)


class Store:
    """The state database. Use ``Store.open(path)`` or ``Store.open(MEMORY)``."""

    def __init__(self, path: str, connection: sqlite3.Connection) -> None:
        self.path = path
        self._conn = connection
        self._lock = threading.RLock()
        self._closed = False

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) and migrate the database at ``path``."""
        target = str(path)
        if target != MEMORY:
            parent = Path(target).parent
            try:
                parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise StoreError(f"cannot create state directory {parent}: {exc.strerror}") from exc
            if not os.access(parent, os.W_OK):
                raise StoreError(f"state directory {parent} is not writable")
        try:
            if target != MEMORY:
                _create_private(target)
                _refuse_planted(target)
            # mode=rw: SQLite never creates the file (_create_private did, without following a
            # symlink), so a symlink swapped in after the check cannot make one elsewhere.
            uri, name = (
                (False, target) if target == MEMORY else (True, f"file:{quote(target)}?mode=rw")
            )
            conn = sqlite3.connect(name, uri=uri, check_same_thread=False, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open database {target}: {exc}") from exc
        store = cls(target, conn)
        try:
            store._configure(conn, writer=True)
            store._check_integrity()
            store._migrate()
            if target != MEMORY:
                # Only once the file proved to be ours: a refused file is left exactly as found.
                for file in (target, f"{target}-wal", f"{target}-shm"):
                    _chmod_private(file)
        except OSError as exc:
            conn.close()
            raise StoreError(f"cannot restrict the mode of {target}: {exc.strerror}") from exc
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Store:
        return cls.open(state_dir / DATABASE_NAME)

    @classmethod
    def inspect(cls, path: str | Path) -> int | None:
        """The schema version of the database at ``path`` (None: there is none yet), after the
        integrity and schema checks ``open`` makes, but creating, migrating and writing nothing,
        not even SQLite's side files: ``ops doctor`` may run as another user than the gateway,
        and a file it made would then be one the gateway cannot write."""
        target = str(path)
        if not os.path.lexists(target):
            return None
        _refuse_planted(target)
        # Without a -wal file the main file holds everything, and "immutable" makes SQLite read
        # it without the -shm file it would otherwise create; with one, both already exist.
        flags = "mode=ro" if os.path.exists(f"{target}-wal") else "immutable=1"
        try:
            conn = sqlite3.connect(
                f"file:{quote(target)}?{flags}", uri=True, check_same_thread=False,
                isolation_level=None,
            )  # fmt: skip
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {target}: {exc}") from exc
        store = cls(target, conn)
        try:
            store._configure(conn, writer=False)
            store._check_integrity()
            store._check_schema_is_ours()
            # On this connection: ``read()`` would open another, which makes the side files.
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            return int(row[0] or 0)
        except sqlite3.Error as exc:
            raise StoreSchemaError(f"{target} cannot be read ({exc}); restore a backup") from exc
        finally:
            store.close()

    # -- connections ---------------------------------------------------------------------------

    def _configure(self, conn: sqlite3.Connection, *, writer: bool) -> None:
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            # Views and triggers may not call functions with side effects: the file is written
            # by the confined gateway and read by unconfined operator commands (REDTEAM F8).
            conn.execute("PRAGMA trusted_schema = OFF")
            if writer and self.path != MEMORY:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"cannot enable WAL on {self.path} (journal_mode={mode})")
                conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StoreSchemaError(
                f"{self.path} is not a usable auto-review database ({exc}); "
                "restore it from a backup or move it aside"
            ) from exc

    def _check_integrity(self) -> None:
        try:
            result = self._conn.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreSchemaError(
                f"{self.path} is corrupt ({exc}); restore it from a backup or move it aside"
            ) from exc
        if result != "ok":
            raise StoreSchemaError(
                f"{self.path} failed its integrity check ({result}); restore it from a backup"
            )

    def _check_schema_is_ours(self) -> None:
        """Refuse a database holding schema objects our migrations did not make.

        A subverted gateway could plant a trigger or view that would then run inside the
        unconfined operator commands opening the same file (REDTEAM F8), so before anything
        writes, the schema must equal what the recorded migrations create.
        """
        try:
            present = _schema_of(self._conn)
            if not present:
                return  # a new, empty database
            applied = (
                {row[0] for row in self._conn.execute("SELECT version FROM schema_migrations")}
                if any(t == "table" and n == "schema_migrations" for t, n, _ in present)
                else set()
            )
        except sqlite3.DatabaseError as exc:
            raise StoreSchemaError(f"{self.path} cannot be read ({exc}); restore a backup") from exc
        known = {m.version: m for m in known_migrations()}
        if applied - known.keys():
            return  # written by a newer build: _migrate refuses it with that diagnosis
        expected = _expected_schema([known[v] for v in sorted(applied)])
        if present != expected:
            odd = sorted({name for _, name, _ in present ^ expected})
            raise StoreSchemaError(
                f"{self.path} has schema objects no migration created or changed "
                f"({', '.join(odd[:5])}); it may have been tampered with: restore a backup"
            )

    def _migrate(self) -> None:
        migrations = known_migrations()
        newest_known = migrations[-1].version if migrations else 0
        if self.path != MEMORY:
            self._check_schema_is_ours()
        with self.write() as conn:
            conn.execute(_MIGRATIONS_TABLE_SQL)
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        if applied and max(applied) > newest_known:
            raise StoreSchemaError(
                f"{self.path} has schema version {max(applied)}, newer than this build knows "
                f"({newest_known}); run a newer auto-review or restore a backup"
            )
        for migration in migrations:
            if migration.version in applied:
                continue
            with self.write() as conn:
                # executescript would COMMIT our transaction; run statements one by one instead.
                for statement in _split_sql(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE``; committed on success, rolled back on error."""
        self._ensure_open()
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot start a write transaction: {exc}") from exc
            try:
                yield self._conn
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(f"database write failed: {exc}") from exc
            except BaseException:
                self._rollback()
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"database commit failed: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection (the shared one for an in-memory database)."""
        self._ensure_open()
        if self.path == MEMORY:
            # One shared connection: query_only makes it read-only for the duration, as the
            # file-backed read connection is.
            with self._lock:
                try:
                    self._conn.execute("PRAGMA query_only = ON")
                    yield self._conn
                except sqlite3.Error as exc:
                    raise StoreError(f"database read failed: {exc}") from exc
                finally:
                    self._conn.execute("PRAGMA query_only = OFF")
            return
        _refuse_planted(self.path)
        try:
            conn = sqlite3.connect(
                f"file:{quote(self.path)}?mode=ro",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
            )
            self._configure(conn, writer=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path} for reading: {exc}") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"database read failed: {exc}") from exc
        finally:
            conn.close()

    def schema_version(self) -> int:
        with self.read() as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        """Close the database; idempotent. Later use raises ``StoreError``."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def _rollback(self) -> None:
        # SQLite may already have rolled back (e.g. SQLITE_FULL); a second ROLLBACK would raise.
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")


def _create_private(path: str) -> None:
    """Create the database file with mode 0600 unless it exists.

    SQLite gives its -wal and -shm files the mode of the database file, so this keeps all three
    private without touching the process-wide umask.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _refuse_planted(path: str) -> None:
    """Refuse a database path that is not a plain file of its own.

    The confined gateway writes the state dir and unconfined (often root) commands open it
    afterwards: a symlink, FIFO or hard link planted there would have them create, write or
    chmod a file outside it. (SQLite itself opens the -wal and -shm files with O_NOFOLLOW.)
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot inspect {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"{path} is not a regular file (planted in the state dir?); move it aside")
    if info.st_nlink != 1:
        raise StoreError(f"{path} has {info.st_nlink} links (planted in the state dir?)")


def _chmod_private(path: str) -> None:
    """Mode 0600 on ``path`` if it is a regular file, not a symlink.

    By path, never through an fd of our own: closing any fd this process has on a database file
    drops every POSIX lock SQLite's open connection holds on it (fcntl(2)), and with the -shm
    file's lock gone a new connection rebuilds the WAL index under the live writer (commits lost
    to readers). A symlink swapped in between the lstat and the chmod gets mode 0600 at most."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode):
        os.chmod(path, 0o600)


_MIGRATIONS_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
)


def _schema_of(conn: sqlite3.Connection) -> set[tuple[str, str, str | None]]:
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!'"
    )
    return {(str(r[0]), str(r[1]), _normalise_sql(r[2])) for r in rows}


def _normalise_sql(sql: str | None) -> str | None:
    """Whitespace-insensitive form of a schema statement (layout carries no behaviour)."""
    if sql is None:
        return None
    return " ".join(sql.split()).replace("( ", "(").replace(" )", ")")


def _expected_schema(migrations: list[Migration]) -> set[tuple[str, str, str | None]]:
    """The schema the given migrations create, built in a scratch in-memory database."""
    scratch = sqlite3.connect(MEMORY, isolation_level=None)
    try:
        scratch.execute(_MIGRATIONS_TABLE_SQL)
        for migration in migrations:
            for statement in _split_sql(migration.sql):
                scratch.execute(statement)
        return _schema_of(scratch)
    finally:
        scratch.close()


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (complete_statement handles quotes and triggers)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise StoreSchemaError("a migration ends with an incomplete statement")
    return statements
