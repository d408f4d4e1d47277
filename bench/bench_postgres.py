"""Ingest on PostgreSQL next to a raw executemany and a raw COPY of the same rows."""

from __future__ import annotations

import argparse
import time
import uuid

import psycopg

from bench.bench_ingest import RAW_TRANSACTION, ctilink_ingest, ingest_arguments
from bench.machine import describe
from bench.workload import interleaved_lines

SERVER = "postgresql://postgres@127.0.0.1:5432"


def rows(lines: list[bytes]) -> list[tuple[str, int, bytes]]:
    """(stream, version, payload) per line, versions counted per network."""
    versions: dict[bytes, int] = {}
    out = []
    for line in lines:
        stream = line.split(b'"network":"', 1)[1].split(b'"', 1)[0]
        versions[stream] = versions.get(stream, 0) + 1
        out.append((stream.decode(), versions[stream], line))
    return out


def raw(url: str, data: list[tuple[str, int, bytes]], copy: bool) -> float:
    """Seconds to insert the rows, RAW_TRANSACTION per commit, into a keyed table."""
    with psycopg.connect(url, autocommit=True) as db:
        table = f"raw_{'copy' if copy else 'many'}"
        db.execute(
            f"CREATE TABLE {table} (stream text, version bigint, payload bytea, "
            "id bigserial, PRIMARY KEY (stream, version))"
        )
        start = time.perf_counter()
        for i in range(0, len(data), RAW_TRANSACTION):
            chunk = data[i : i + RAW_TRANSACTION]
            with db.transaction(), db.cursor() as cursor:
                if copy:
                    with cursor.copy(f"COPY {table} (stream, version, payload) FROM STDIN") as c:
                        for row in chunk:
                            c.write_row(row)
                else:
                    cursor.executemany(
                        f"INSERT INTO {table} (stream, version, payload) VALUES (%s, %s, %s)",
                        chunk,
                    )
        return time.perf_counter() - start


def main() -> None:
    """Print events/s: raw executemany, raw COPY, ctilink ingest (1 process, workers)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default=SERVER, help="PostgreSQL server URL, no database")
    args = ingest_arguments(parser).parse_args()
    lines = interleaved_lines(args.events, args.networks, args.systems)
    n = len(lines)
    database = f"ctilink_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        url = f"{args.server}/{database}"
        print(f"machine: {describe()}, PostgreSQL {server_version(url)}")
        print(f"events: {n} over {args.networks} networks, {args.systems} systems each")
        data = rows(lines)
        many = raw(url, data, copy=False)
        print(f"raw executemany           : {n / many:10,.0f} events/s")
        copied = raw(url, data, copy=True)
        print(f"raw COPY                  : {n / copied:10,.0f} events/s")
        for workers in sorted({1, args.workers}):
            store = f"{url}?schema=ctilink_{workers}"
            seconds, counts = ctilink_ingest(store, lines, workers)  # type: ignore[arg-type]
            assert counts == {"accepted": n}, counts
            label = "ctilink ingest, 1 process" if workers == 1 else f"ctilink, {workers} workers"
            print(
                f"{label:26s}: {n / seconds:10,.0f} events/s   "
                f"vs executemany {seconds / many:4.1f}x   vs COPY {seconds / copied:4.1f}x"
            )
    finally:
        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def server_version(url: str) -> str:
    """The server's version, as it reports it."""
    with psycopg.connect(url) as db:
        return str(db.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]


if __name__ == "__main__":
    main()
