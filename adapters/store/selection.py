"""Store selection: a SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, quote, unquote, urlsplit

from eventsourcing.persistence import PersistenceError

from ctilink.adapters.errors import UserError
from ctilink.adapters.store.maintenance.index_builds import forget_index
from ctilink.adapters.store.maintenance.reindex import ensure_indexes
from ctilink.adapters.store.persistence.schema import (
    SCHEMA_VERSION,
    TABLES,
    VERSION_KEY,
    is_current,
    mark_current,
    version_of,
)
from ctilink.adapters.store.persistence.times import TIMES_COMPLETE
from ctilink.adapters.store.persistence.writes import StoreWrites
from ctilink.domain.application import NetworkService

DEFAULT_STORE = "ctilink.db"
MEMORY = "memory://"
STORE_ENV = "CTILINK_STORE"


class StoreError(UserError):
    """The store cannot be opened as given."""


class StoreAway(StoreError):
    """The store's server does not answer (yet): a service waits for it."""


def resolve(store: str | None) -> str:
    """The store to use: --store, else $CTILINK_STORE, else ./ctilink.db."""
    chosen = store if store is not None else os.environ.get(STORE_ENV)
    if chosen is None:
        return DEFAULT_STORE
    if not chosen.strip():
        raise StoreError("the store is given as an empty string: name a file or a URL")
    scheme = chosen.split("://", 1)[0] if "://" in chosen else None
    if scheme == "memory" and chosen != MEMORY:
        raise StoreError(f"store {chosen!r}: memory:// takes nothing after it")
    if scheme is not None and f"{scheme}://" not in (*POSTGRES_SCHEMES, MEMORY):
        raise StoreError(
            f"store {redact(chosen)!r}: {scheme}:// is not a store ctilink knows "
            "(a SQLite file path, postgresql://…, or memory://)"
        )
    return chosen


def is_postgres(store: str) -> bool:
    """Whether the store is a PostgreSQL URL rather than a SQLite path."""
    return store.startswith(POSTGRES_SCHEMES)


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# TLS to PostgreSQL: URL options that libpq reads from its own environment variables.
LIBPQ_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
}
LIBPQ_PREFIX = "LIBPQ_"  # marks them in the environment handed to eventsourcing
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def postgres_env(url: str) -> dict[str, str]:
    """The eventsourcing environment for postgresql://user:pass@host:port/db?schema=s."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as error:  # e.g. an unclosed [ of an IPv6 address
        raise StoreError(f"store URL {redact(url)!r} cannot be read: {error}") from None
    try:
        port = parts.port or 5432
    except ValueError:
        raise StoreError(f"store URL {redact(url)!r}: the port is not a number") from None
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise StoreError(f"store URL {redact(url)!r} names no database (…/dbname)")
    if any(ord(c) < 0x20 for c in database):  # libpq would cut the name at a NUL
        raise StoreError(f"store URL {redact(url)!r}: the database name holds control characters")
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    schema = options.pop("schema", "")
    if schema and not SCHEMA_NAME.fullmatch(schema):
        raise StoreError(
            f"store URL {redact(url)!r}: schema {schema!r} is not a lower-case SQL name"
        )
    tls = {LIBPQ_ENV[key]: options.pop(key) for key in list(options) if key in LIBPQ_ENV}
    if tls.get("PGSSLMODE", "prefer") not in SSL_MODES:
        raise StoreError(
            f"store URL {redact(url)!r}: sslmode must be one of {', '.join(SSL_MODES)}"
        )
    if options:
        raise StoreError(f"store URL {redact(url)!r}: unknown option(s) {sorted(options)}")
    return {
        **{f"{LIBPQ_PREFIX}{name}": value for name, value in tls.items()},
        "PERSISTENCE_MODULE": "ctilink.adapters.store.persistence.postgres:Factory",
        "POSTGRES_DBNAME": database,
        "POSTGRES_HOST": host or "127.0.0.1",
        "POSTGRES_PORT": str(port),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        # eventsourcing insists on a password even where the server trusts the user.
        "POSTGRES_PASSWORD": unquote(parts.password or os.environ.get("PGPASSWORD", "-")),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "8",
        "POSTGRES_PRE_PING": "y",
    }


def store_tag(url: str) -> str:
    """A short name for a PostgreSQL store: its database and schema, and a digest of where."""
    env = postgres_env(url)
    where = ":".join(env[k] for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DBNAME"))
    schema = env["POSTGRES_SCHEMA"] or "public"
    digest = hashlib.sha256(f"{where}/{schema}".encode()).hexdigest()[:8]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", env["POSTGRES_DBNAME"])[:40]
    return f"{name}-{schema}-{digest}"


def redact(store: str) -> str:
    """The store as it may be shown: a URL's password replaced by ***."""
    scheme, sep, rest = store.partition("://")
    if not sep:
        return store
    # The host follows the last @ of the authority: a password may hold @ itself.
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return store
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{tail}"


def persistence_env(store: str) -> dict[str, str]:
    """The eventsourcing environment for a store path or URL."""
    if is_postgres(store):
        return postgres_env(store)
    if store == MEMORY:  # this process only: for tests and trying things out
        # SQLite in memory, shared by the process's connections: the same SQL as a file.
        return {
            "PERSISTENCE_MODULE": "ctilink.adapters.store.persistence.sqlite:Factory",
            "SQLITE_DBNAME": f"file:ctilink-{uuid.uuid4().hex}?mode=memory&cache=shared",
        }
    path = Path(store)
    if path.is_dir():
        raise StoreError(f"store {store!r} is a directory, not a SQLite file")
    if not path.parent.exists():
        raise StoreError(f"store {store!r}: directory {str(path.parent)!r} does not exist")
    return {
        "PERSISTENCE_MODULE": "ctilink.adapters.store.persistence.sqlite:Factory",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "30",
    }


def open_service(
    store: str | None = None,
    *,
    create: bool = True,
    index: bool = True,
    existing: bool = False,
    notes: TextIO | None = None,
) -> NetworkService:
    """Open the application service on the selected store; StoreError says why not.

    Without `create` the store is only read: nothing is created or written, a
    SQLite file is opened read-only (on read-only media too). With it, a store
    from before the indexes gets them built (unless `index` is False). `existing`:
    the store must hold a log already, even when opened to write. `notes`: where
    building an index is told (default stderr).
    """
    location = resolve(store)
    postgres = is_postgres(location)
    in_memory = location in (":memory:", MEMORY)
    reading = not create or existing  # the log must be there already
    if reading and not postgres and not in_memory and not Path(location).exists():
        # Reading must not leave an empty store file behind as a side effect.
        raise StoreError(f"store {location!r} does not exist (nothing was ingested there)")
    env = persistence_env(location)
    tables: set[str] = set()
    if not postgres and not in_memory:
        tables = sqlite_tables(location)
        if tables and "stored_events" not in tables:
            shown = ", ".join(sorted(tables)[:5])
            raise StoreError(
                f"store {location!r} is a SQLite database of something else (tables: {shown}); "
                "ctilink keeps its own file"
            )
        if reading and not tables:
            raise StoreError(f"store {location!r} holds no ctilink log (nothing was ingested)")
        if not create:
            env = read_only(env, location)
    if not create and not in_memory:  # a store in memory starts empty: it needs its tables
        env["CREATE_TABLE"] = "n"
    if postgres:
        # libpq reads its TLS settings from the environment: set for this process
        # and the children it starts (the publisher), which open the same store.
        for key in [key for key in env if key.startswith(LIBPQ_PREFIX)]:
            os.environ[key.removeprefix(LIBPQ_PREFIX)] = env.pop(key)
        tables, version = probe(location, env, reading=reading)
        current = is_current(tables, version)
        if current:  # every table is there at this version: no DDL, no privilege to make any
            env["CREATE_TABLE"] = "n"
        tables = {"stored_events" if t == "ctilink_events" else t for t in tables}
    else:
        current = False
    try:
        opened = NetworkService(env={**env, "MAPPER_TOPIC": MAPPER})
        # The write side's collaborator (load a batch, hold networks between batches).
        opened.writes = writes = StoreWrites(opened)
        writes.max_cached_networks = cache_setting(CACHED_NETWORKS, writes.max_cached_networks)
        every = cache_setting(SNAPSHOT_EVERY, 0)
        writes.snapshot_interval = every or None  # 0: by size
        if create and not current and not in_memory:
            try:
                make_current(opened)
            except BaseException:
                opened.close()
                raise
        if create and index:
            try:
                # A table dropped by hand: its mark alone is no proof.
                if index_tables_missing(tables):
                    forget_index(opened.recorder)
                if "stored_events" in tables and "ctilink_times" not in tables:
                    forget_index(opened.recorder, TIMES_COMPLETE)
                ensure_indexes(opened, notes)  # a store from before the indexes gets them
            except BaseException:
                opened.close()
                raise
        return opened
    except (sqlite3.Error, PersistenceError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if postgres and ("permission denied" in reason or "must be owner" in reason):
            raise StoreError(
                f"store {redact(location)!r} lacks tables of this ctilink, and this role may not "
                f"make them ({reason}): run `ctilink migrate --store URL` as their owner"
            ) from None
        away = postgres and any(sign in reason.lower() for sign in AWAY_SIGNS)
        kind = StoreAway if away else StoreError  # a cut mid-open is waited out too
        raise kind(f"store {redact(location)!r} cannot be opened: {reason}") from None


def tables_of(location: str) -> tuple[set[str], int]:
    """Which of ctilink's tables a store has (by their PostgreSQL names), and its version."""
    if is_postgres(location):
        env = postgres_env(location)
        for key in [key for key in env if key.startswith(LIBPQ_PREFIX)]:
            os.environ[key.removeprefix(LIBPQ_PREFIX)] = env.pop(key)
        return probe(location, env)
    sqlite_names = {"stored_events": "ctilink_events", "stored_snapshots": "ctilink_snapshots"}
    sqlite_names["tracking"] = "ctilink_tracking"
    found = {sqlite_names.get(name, name) for name in sqlite_tables(location)} & set(TABLES)
    if "ctilink_meta" not in found:
        return found, 0
    with contextlib.closing(sqlite3.connect(f"file:{quote(location)}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT value FROM ctilink_meta WHERE key = ?", (VERSION_KEY,)).fetchone()
    return found, int(row[0]) if row and str(row[0]).isdigit() else 0


def make_current(service: NetworkService) -> None:
    """Make the tables the service did not (the publisher's tracking), and mark the version."""
    recorder: Any = service.recorder
    if version_of(recorder) < SCHEMA_VERSION:
        service.factory.tracking_recorder()  # its table is made when first asked for
        mark_current(recorder)


# What a long-running writer holds in memory, at most: its memory is bounded by
# these, never by the length of the logs.
CACHED_NETWORKS = "CTILINK_CACHED_NETWORKS"  # networks held for writing
SNAPSHOT_EVERY = "CTILINK_SNAPSHOT_EVERY"  # positions between snapshots (default: by size)
MAPPER = "ctilink.adapters.store.persistence.codec:NetworkMapper"  # rows as compact msgspec JSON


def cache_setting(name: str, default: int) -> int:
    """A cache size from the environment (a whole number from 0), else the default."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not text.isascii():
        raise StoreError(f"${name} must be a whole number from 0, not {text!r}")
    return int(text)


def sqlite_tables(path: str) -> set[str]:
    """The tables of an existing SQLite file, read-only (none for a new or empty file)."""
    if not Path(path).exists() or Path(path).stat().st_size == 0:
        return set()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.DatabaseError as error:
        if "unable to open" in str(error) or "readonly" in str(error):
            return _tables_immutable(path)
        raise StoreError(f"store {path!r} cannot be opened: {error}") from None
    return {row[0] for row in rows}


def _tables_immutable(path: str) -> set[str]:
    """The tables of a SQLite file on read-only media (its WAL index cannot be made)."""
    uri = f"file:{quote(path)}?immutable=1"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def read_only(env: dict[str, str], path: str) -> dict[str, str]:
    """The environment that opens a SQLite store for reading only."""
    # mode=ro still needs the WAL's index beside the file; read-only media have
    # none, and the file is then read as it stands (immutable).
    flag = "immutable=1" if opens_immutable(path) else "mode=ro"
    return {**env, "SQLITE_DBNAME": f"file:{quote(path)}?{flag}"}


def opens_immutable(path: str) -> bool:
    """Whether a read-only open sees the file as it stands, and never a later commit."""
    writable_dir = os.access(Path(path).resolve().parent, os.W_OK)
    return not writable_dir and not Path(f"{path}-shm").exists()


def probe(location: str, env: dict[str, str], *, reading: bool = False) -> tuple[set[str], int]:
    """Connect once, so that a refused connection is told at once and with its reason.

    `reading`: the store must already hold a log (nothing will create it).
    Returns which of ctilink's tables the schema holds, and its schema version.
    """
    # The connection pool would retry for its whole timeout and then say only that.
    import psycopg  # only PostgreSQL stores need the driver loaded

    try:
        with psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"],
            connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]),
        ) as connection:
            schema = env["POSTGRES_SCHEMA"] or "public"
            found = connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
            tables = {str(row[0]) for row in found} & set(TABLES)
            version = 0
            if "ctilink_meta" in tables:
                row = connection.execute(
                    f'SELECT value FROM "{schema}".ctilink_meta WHERE key = %s', (VERSION_KEY,)
                ).fetchone()
                version = int(row[0]) if row and str(row[0]).isdigit() else 0
    except (psycopg.Error, UnicodeError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        away = any(sign in reason.lower() for sign in AWAY_SIGNS)
        kind = StoreAway if away else StoreError
        raise kind(f"store {redact(location)!r} cannot be opened: {reason}") from None
    if reading and f"{NetworkService.name}_events" not in tables:
        raise StoreError(f"store {redact(location)!r} holds no ctilink log (nothing was ingested)")
    return tables, version


# The network index's tables: if either is gone from a store that holds a log,
# the index is built again, whatever its mark says.
INDEX_TABLES = ("ctilink_networks", "ctilink_damaged")


def index_tables_missing(tables: set[str]) -> bool:
    """Whether a store that holds a log lacks a table of the network index."""
    return "stored_events" in tables and not set(INDEX_TABLES) <= tables


# How libpq says the server is not there (yet): as opposed to a wrong password or
# database, which no waiting mends.
AWAY_SIGNS = (
    "connection refused",
    "timeout expired",
    "could not connect",
    "the database system is starting up",
    "the database system is shutting down",
    "no route to host",
    "server closed the connection",
    "terminating connection due to administrator command",  # a restart, a failover
    "connection to server",  # ... failed / was lost
)
