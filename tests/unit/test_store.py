"""Store: WAL, busy timeout, foreign keys, migrations once, refusal of foreign or newer files."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from contextlib import closing
from pathlib import Path

import pytest

from auto_review.errors import StoreError, StoreSchemaError
from auto_review.store import BUSY_TIMEOUT_MS, DATABASE_NAME, MEMORY, Store, known_migrations


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / DATABASE_NAME


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_enables_wal_busy_timeout_and_foreign_keys(db_path: Path) -> None:
    store = Store.open(db_path)
    try:
        with store.write() as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with store.read() as conn:
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        store.close()


def test_store_enforces_foreign_keys(tmp_path: Path) -> None:
    store = Store.open(MEMORY)
    with store.write() as conn:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE child (pid INTEGER REFERENCES parent(id))")
        conn.execute("INSERT INTO parent VALUES (1)")
        conn.execute("INSERT INTO child VALUES (1)")
    with pytest.raises(StoreError, match="FOREIGN KEY"), store.write() as conn:
        conn.execute("INSERT INTO child VALUES (2)")
    store.close()


def test_store_applies_every_migration_once_and_records_it(db_path: Path) -> None:
    store = Store.open(db_path)
    with store.read() as conn:
        rows = conn.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        ).fetchall()
        created = conn.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
    assert [(r[0], r[1]) for r in rows] == [(m.version, m.name) for m in known_migrations()]
    assert created is not None
    assert store.schema_version() == known_migrations()[-1].version
    store.close()


def test_store_reopening_does_not_reapply_migrations(db_path: Path) -> None:
    Store.open(db_path).close()
    with closing(sqlite3.connect(db_path)) as raw:
        first = raw.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    store = Store.open(db_path)
    with store.read() as conn:
        again = [
            tuple(r) for r in conn.execute("SELECT version, applied_at FROM schema_migrations")
        ]
        metas = conn.execute("SELECT COUNT(*) FROM meta").fetchone()[0]
    store.close()
    assert again == first
    assert metas == 1


def test_store_in_memory_is_migrated_and_usable() -> None:
    store = Store.open(MEMORY)
    assert store.schema_version() == known_migrations()[-1].version
    with store.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    with store.read() as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'k'").fetchone()[0] == "v"
    store.close()


def test_store_refuses_a_corrupt_file_and_leaves_it_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(mode=0o700)
    garbage = bytes(range(256)) * 64
    db_path.write_bytes(garbage)
    db_path.chmod(0o644)
    with pytest.raises(StoreSchemaError, match="not a usable auto-review database"):
        Store.open(db_path)
    assert db_path.read_bytes() == garbage
    assert _mode(db_path) == 0o644
    assert sorted(p.name for p in db_path.parent.iterdir()) == [DATABASE_NAME]


def test_store_refuses_a_database_with_a_newer_schema(db_path: Path) -> None:
    Store.open(db_path).close()
    newer = known_migrations()[-1].version + 1
    with closing(sqlite3.connect(db_path)) as raw, raw:
        raw.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)",
            (newer,),
        )
    before = db_path.read_bytes()
    with pytest.raises(StoreSchemaError, match=f"schema version {newer}, newer than this build"):
        Store.open(db_path)
    assert db_path.read_bytes() == before


def test_store_serialises_concurrent_writers_from_threads(db_path: Path) -> None:
    store = Store.open(db_path)
    with store.write() as conn:
        conn.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.execute("INSERT INTO counter VALUES (0)")
    threads, per_thread, errors = 8, 25, []

    def bump() -> None:
        try:
            for _ in range(per_thread):
                with store.write() as conn:
                    # A read-modify-write that loses updates unless writers are serialised.
                    n = conn.execute("SELECT n FROM counter").fetchone()[0]
                    conn.execute("UPDATE counter SET n = ?", (n + 1,))
        except Exception as exc:  # reported below; a thread cannot fail the test by itself
            errors.append(exc)

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with store.read() as conn:
        total = conn.execute("SELECT n FROM counter").fetchone()[0]
    store.close()
    assert errors == []
    assert total == threads * per_thread


def test_store_serialises_writers_from_two_store_instances(db_path: Path) -> None:
    first, second = Store.open(db_path), Store.open(db_path)
    with first.write() as conn:
        conn.execute("CREATE TABLE t (n INTEGER)")

    def write_many(store: Store) -> None:
        for i in range(20):
            with store.write() as conn:
                conn.execute("INSERT INTO t VALUES (?)", (i,))

    workers = [threading.Thread(target=write_many, args=(s,)) for s in (first, second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with first.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 40
    first.close()
    second.close()


def test_store_creates_a_private_file_and_directory(db_path: Path) -> None:
    store = Store.open(db_path)
    with store.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    assert _mode(db_path.parent) == 0o700
    for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        assert path.exists(), path
        assert _mode(path) == 0o600, path
    store.close()


def test_store_tightens_the_mode_of_an_existing_database(db_path: Path) -> None:
    Store.open(db_path).close()
    db_path.chmod(0o644)
    Store.open(db_path).close()
    assert _mode(db_path) == 0o600


def test_store_read_connection_refuses_writes(db_path: Path) -> None:
    store = Store.open(db_path)
    with pytest.raises(StoreError, match="readonly"), store.read() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    # Positive control: the same statement through write() succeeds.
    with store.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    store.close()


def test_store_in_memory_read_refuses_writes_and_write_still_works() -> None:
    store = Store.open(MEMORY)
    with pytest.raises(StoreError, match="readonly"), store.read() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    with store.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    store.close()


def test_store_rolls_back_a_failed_write() -> None:
    store = Store.open(MEMORY)

    def insert_then_fail() -> None:
        with store.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        insert_then_fail()
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM meta WHERE key = 'k'").fetchone()[0] == 0
    store.close()


def test_store_translates_sqlite_errors_to_store_error() -> None:
    store = Store.open(MEMORY)
    with pytest.raises(StoreError) as info, store.write() as conn:
        conn.execute("SELECT * FROM no_such_table")
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    store.close()


def test_store_close_is_idempotent_and_later_use_raises() -> None:
    store = Store.open(MEMORY)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"), store.write():
        pass


def test_store_refuses_an_unwritable_state_directory(tmp_path: Path) -> None:
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    with pytest.raises(StoreError, match="cannot create state directory"):
        Store.open(target / DATABASE_NAME)


def test_store_refuses_a_database_with_a_planted_trigger(tmp_path: Path) -> None:
    """A trigger planted by a subverted gateway must not run in operator commands (REDTEAM F8)."""
    path = tmp_path / "state.sqlite3"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TRIGGER planted AFTER INSERT ON meta BEGIN DELETE FROM schema_migrations; END"
    )
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreSchemaError, match="planted"):
        Store.open(path)
    assert path.read_bytes() == before


def test_store_reopens_its_own_database_after_the_schema_check(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    Store.open(path).close()
    store = Store.open(path)
    assert store.schema_version() == known_migrations()[-1].version
    store.close()


def test_store_connections_do_not_trust_the_schema(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.sqlite3")
    with store.read() as conn:
        assert conn.execute("PRAGMA trusted_schema").fetchone()[0] == 0
    store.close()


def _listing(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_store_inspect_reads_the_version_and_leaves_every_file_as_it_was(db_path: Path) -> None:
    """ops doctor inspects the database, maybe as root while the gateway runs as its own user:
    a file it created (SQLite's -shm, say) would be one the gateway could not write."""
    assert Store.inspect(db_path) is None
    assert not db_path.parent.exists()
    Store.open(db_path).close()  # closed cleanly: no -wal file left
    before = _listing(db_path.parent)
    assert Store.inspect(db_path) == known_migrations()[-1].version
    assert _listing(db_path.parent) == before
    running = Store.open(db_path)  # a gateway holding it open: -wal and -shm exist
    try:
        with running.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        before = _listing(db_path.parent)
        assert {f"{DATABASE_NAME}-wal", f"{DATABASE_NAME}-shm"} <= before.keys()
        assert Store.inspect(db_path) == known_migrations()[-1].version
        assert _listing(db_path.parent) == before
    finally:
        running.close()


def test_store_inspect_refuses_a_planted_trigger_and_reports_a_newer_schema(db_path: Path) -> None:
    Store.open(db_path).close()
    with closing(sqlite3.connect(db_path)) as raw, raw:
        raw.execute("INSERT INTO schema_migrations VALUES (?, 'future', 0)", (10_000,))
    assert Store.inspect(db_path) == 10_000  # the caller says it is too new
    with closing(sqlite3.connect(db_path)) as raw, raw:
        raw.execute("CREATE TRIGGER planted AFTER INSERT ON meta BEGIN SELECT 1; END")
    # Newer than this build: the schema cannot be compared, like Store.open (which refuses it).
    assert Store.inspect(db_path) == 10_000
    with closing(sqlite3.connect(db_path)) as raw, raw:
        raw.execute("DELETE FROM schema_migrations WHERE version = 10000")
    with pytest.raises(StoreSchemaError, match="planted"):
        Store.inspect(db_path)


def test_store_reads_from_a_state_dir_whose_name_has_uri_characters(tmp_path: Path) -> None:
    """Read connections open a ``file:`` URI: a '#' or '?' in the path must not cut it short."""
    path = tmp_path / "a#b?c%d" / DATABASE_NAME
    store = Store.open(path)
    try:
        assert store.schema_version() == known_migrations()[-1].version
    finally:
        store.close()
    assert Store.inspect(path) == known_migrations()[-1].version


def test_store_open_keeps_the_locks_sqlite_holds(tmp_path: Path) -> None:
    """Closing any fd of ours on a database file drops every POSIX lock SQLite's connection
    holds on it (fcntl(2)); without the -shm file's lock, another connection rebuilds the WAL
    index under the live writer and its commits are lost to readers (seen as e2e jobs that
    never left 'running'). Opening the store must leave SQLite's locks in place."""
    store = Store.open(tmp_path / "auto-review.sqlite3")
    with store.write() as conn:
        conn.execute("SELECT 1")
    pid = str(os.getpid())
    with open("/proc/locks", encoding="ascii") as fh:
        held = [line for line in fh if f" {pid} " in line]
    assert held, "the open store holds no POSIX lock: something of ours closed an fd on its files"
