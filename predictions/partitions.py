"""Daily range partitions of the prediction log tables, on PostgreSQL (nothing elsewhere).

Each table in PARTITIONED_TABLES is `PARTITION BY RANGE (created_at)`, one partition per UTC
day named `<table>_pYYYYMMDD`, plus `<table>_default`, so an insert for a day without its
partition still lands somewhere. Retention then drops a whole day (monitoring.services.
retention) instead of deleting its rows one by one. PostgreSQL wants the partition key in
every unique index, so the primary key is (id, created_at); `id` stays unique because it only
ever comes from the table's identity sequence, and the Django model keeps `id` as its key.

`log_partitions_ensure` (the beat task `predictions.log_partitions_ensure`) creates the days
ahead. A table is added with one line in PARTITIONED_TABLES and a migration that calls
`partition(...)` for it (a migration names its own tables: this list grows after it ran).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

DAYS_AHEAD = 3
# A DDL step waits at most this long for a table lock: a long read must not make every insert
# queue behind our ACCESS EXCLUSIVE request.
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class Partitioned:
    table: str
    column: str = "created_at"
    key: str = "id"


PARTITIONED_TABLES = (
    Partitioned("predictions_predictionlog"),
    Partitioned("predictions_predictionerror"),
)


@dataclass(frozen=True)
class DayPartition:
    name: str
    day: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)


def enabled(conn=connection) -> bool:
    return conn.vendor == "postgresql"


def spec_of(table: str) -> Partitioned:
    (spec,) = [p for p in PARTITIONED_TABLES if p.table == table]
    return spec


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def _q(name: str) -> str:
    """A quoted identifier (ours, or read from the catalog); a name PostgreSQL would cut at
    63 bytes is refused rather than silently meaning another table."""
    if len(name.encode()) > 63:
        raise ValueError(f"identifier longer than 63 bytes: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def is_partitioned(table: str, conn=connection) -> bool:
    if not enabled(conn):
        return False
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)",
                       [table])
        return cursor.fetchone() is not None


def day_partitions(table: str, conn=connection) -> list[DayPartition]:
    """The table's day partitions, oldest first (the default partition is not one)."""
    if not enabled(conn):
        return []
    with conn.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "WHERE i.inhparent = to_regclass(%s)", [table])
        names = [name for (name,) in cursor.fetchall()]
    pattern = re.compile(re.escape(table) + r"_p(\d{8})")
    days = [DayPartition(name, datetime.strptime(m.group(1), "%Y%m%d").date())
            for name in names if (m := pattern.fullmatch(name))]
    return sorted(days, key=lambda p: p.day)


def _bounds(day: date) -> tuple[str, str]:
    part = DayPartition("", day)
    return part.start.isoformat(), part.end.isoformat()


# --- the beat task's service ------------------------------------------------------------------

def log_partitions_ensure(*, today: date | None = None, days_ahead: int = DAYS_AHEAD,
                          conn=connection) -> list[str]:
    """Create today's partition and `days_ahead` more of every partitioned table (idempotent).

    Returns the names created. Rows the default partition holds for such a day (written while
    the task did not run) move into the new partition in the same transaction. No audit event:
    this is storage upkeep that changes no row's meaning (the drops are in the retention's).
    """
    if not enabled(conn):
        return []
    today = today or timezone.now().astimezone(UTC).date()
    created = []
    for spec in PARTITIONED_TABLES:
        if not is_partitioned(spec.table, conn):
            continue
        have = {p.day for p in day_partitions(spec.table, conn)}
        for n in range(days_ahead + 1):
            day = today + timedelta(days=n)
            if day not in have:
                with transaction.atomic(using=conn.alias):
                    _partition_attach(spec, day, conn)
                created.append(partition_name(spec.table, day))
    return created


def _partition_attach(spec: Partitioned, day: date, conn) -> None:
    """Make the day's partition beside the table, move the default's rows of that day into it,
    then attach it (ATTACH takes only SHARE UPDATE EXCLUSIVE on the parent: inserts go on)."""
    table, name, default = _q(spec.table), _q(partition_name(spec.table, day)), _q(
        default_name(spec.table))
    start, end = _bounds(day)
    column = f'"{spec.column}"'
    with conn.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # Locked first, so no row for that day can reach the default between the move and
        # the attach (which would then refuse); only inserts of days without partition wait.
        cursor.execute(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS "
                       f"INCLUDING CONSTRAINTS INCLUDING STORAGE)")
        cursor.execute(f"WITH moved AS (DELETE FROM {default} WHERE {column} >= %s AND "
                       f"{column} < %s RETURNING *) INSERT INTO {name} SELECT * FROM moved",
                       [start, end])
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} "
                       f"FOR VALUES FROM (%s) TO (%s)", [start, end])


# --- retention's drop -------------------------------------------------------------------------

def partition_count(partition: DayPartition, *, keep: tuple[str, list] | None = None,
                    conn=connection) -> tuple[int, int]:
    """(rows, rows matching `keep`) of one partition: what a drop would remove and keep."""
    with conn.cursor() as cursor:
        return _count(cursor, _q(partition.name), keep)


def _count(cursor, name: str, keep) -> tuple[int, int]:
    cursor.execute(f"SELECT count(*) FROM {name}")
    rows = cursor.fetchone()[0]
    kept = 0
    if keep is not None and rows:
        cursor.execute(f"SELECT count(*) FROM {name} WHERE {keep[0]}", keep[1])
        kept = cursor.fetchone()[0]
    return rows, kept


def partition_drop(table: str, partition: DayPartition, *,
                   keep: tuple[str, list] | None = None, conn=connection) -> tuple[int, int]:
    """Drop one day partition of `table`, in one transaction; rows matching `keep` (an SQL
    condition and its parameters) are written again through the parent first (they land in
    the default partition). Returns (rows the partition held, rows kept)."""
    parent, name = _q(table), _q(partition.name)
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # Deferred foreign-key checks of rows written earlier in an enclosing transaction
        # would forbid the DROP ("pending trigger events"): run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # SHARE: no late row slips in between the count and the drop; the other days' inserts
        # and every read go on until the short DETACH.
        cursor.execute(f"LOCK TABLE {name} IN SHARE MODE")
        rows, kept = _count(cursor, name, keep)
        cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {name}")
        if kept:
            cursor.execute(f"INSERT INTO {parent} SELECT * FROM {name} WHERE {keep[0]}",
                           keep[1])
        cursor.execute(f"DROP TABLE {name}")
    return rows, kept


# --- the migration's conversion, both ways ----------------------------------------------------

def partition(spec: Partitioned, *, conn=connection, today: date | None = None) -> None:
    """Turn a plain table into a partitioned one with the same name, columns, checks, foreign
    keys, indexes (re-created on the parent, so on every partition) and rows; the identity
    sequence goes on from where it was. Days of the retention period that hold rows get their
    partition (older rows go to the default one, which the chunked delete empties), and so do
    today and DAYS_AHEAD more. Nothing happens if the table is already partitioned."""
    if not enabled(conn) or is_partitioned(spec.table, conn):
        return
    today = today or timezone.now().astimezone(UTC).date()
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        old = _set_aside(cursor, spec)
        table, column = _q(spec.table), f'"{spec.column}"'
        cursor.execute(f"CREATE TABLE {table} (LIKE {_q(old.name)} INCLUDING DEFAULTS "
                       f"INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING STORAGE "
                       f"INCLUDING COMMENTS) PARTITION BY RANGE ({column})")
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT {_q(old.pk)} '
                       f'PRIMARY KEY ("{spec.key}", {column})')
        cursor.execute(f"CREATE TABLE {_q(default_name(spec.table))} PARTITION OF {table} "
                       f"DEFAULT")
        since = datetime.combine(today, time(), tzinfo=UTC) - timedelta(
            days=settings.PREDICTION_LOG_RETENTION_DAYS)
        cursor.execute(f"SELECT DISTINCT ({column} AT TIME ZONE 'UTC')::date FROM "
                       f"{_q(old.name)} WHERE {column} >= %s", [since])
        days = {day for (day,) in cursor.fetchall()}
        days |= {today + timedelta(days=n) for n in range(DAYS_AHEAD + 1)}
        for day in sorted(days):
            start, end = _bounds(day)
            cursor.execute(f"CREATE TABLE {_q(partition_name(spec.table, day))} PARTITION OF "
                           f"{table} FOR VALUES FROM (%s) TO (%s)", [start, end])
        _move_back(cursor, spec, old)


def unpartition(spec: Partitioned, *, conn=connection) -> None:
    """The way back: the same table as one plain table, primary key `id` alone, every row."""
    if not enabled(conn) or not is_partitioned(spec.table, conn):
        return
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        old = _set_aside(cursor, spec)
        table = _q(spec.table)
        cursor.execute(f"CREATE TABLE {table} (LIKE {_q(old.name)} INCLUDING DEFAULTS "
                       f"INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING STORAGE "
                       f"INCLUDING COMMENTS)")
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT {_q(old.pk)} '
                       f'PRIMARY KEY ("{spec.key}")')
        _move_back(cursor, spec, old)


@dataclass
class _SetAside:
    name: str
    pk: str
    indexes: list[str]
    foreign_keys: list[tuple[str, str]]
    sequence_at: tuple[int, bool] | None


def _set_aside(cursor, spec: Partitioned) -> _SetAside:
    """Read what must be re-created, rename the table (and its sequence) out of the way, and
    free the names of its indexes; refuse what a partitioned table cannot keep."""
    table = spec.table
    cursor.execute("SELECT conname FROM pg_constraint WHERE confrelid = to_regclass(%s) "
                   "AND contype = 'f'", [table])
    if referenced := [name for (name,) in cursor.fetchall()]:
        raise RuntimeError(f"{table} is referenced by foreign keys {referenced}: a "
                           f"partitioned table cannot be their target on its own key")
    cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) "
                   "AND contype = 'p'", [table])
    (pk,) = cursor.fetchone()
    cursor.execute("SELECT i.relname, pg_get_indexdef(i.oid), x.indisunique FROM pg_index x "
                   "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = to_regclass(%s) "
                   "AND NOT x.indisprimary ORDER BY i.relname", [table])
    found = cursor.fetchall()
    if unique := [name for name, _def, is_unique in found if is_unique]:
        raise RuntimeError(f"{table} has unique indexes {unique} without {spec.column}")
    # A partitioned parent's index is printed `ON ONLY`: re-created on a table, it must not be.
    indexes = [definition.replace(" ON ONLY ", " ON ", 1) for _name, definition, _u in found]
    cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                   "conrelid = to_regclass(%s) AND contype = 'f' ORDER BY conname", [table])
    foreign_keys = cursor.fetchall()
    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, spec.key])
    sequence = cursor.fetchone()[0]
    sequence_at = None
    if sequence:
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
        sequence_at = cursor.fetchone()
    aside = f"{table}__old"
    cursor.execute(f"ALTER TABLE {_q(table)} RENAME TO {_q(aside)}")
    if sequence:  # the new table's identity takes the name
        cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {_q(aside + '_seq')}")
    for name, _definition, _unique in found:
        cursor.execute(f"DROP INDEX {_q(name)}")
    cursor.execute(f"ALTER TABLE {_q(aside)} DROP CONSTRAINT {_q(pk)}")
    return _SetAside(aside, pk, indexes, foreign_keys, sequence_at)


def _move_back(cursor, spec: Partitioned, old: _SetAside) -> None:
    """Rows first, then indexes and foreign keys (built once over the rows, not row by row)."""
    table = _q(spec.table)
    cursor.execute(f"INSERT INTO {table} SELECT * FROM {_q(old.name)}")
    if old.sequence_at is not None:
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s, %s)",
                       [spec.table, spec.key, *old.sequence_at])
    for definition in old.indexes:
        cursor.execute(definition)
    for name, definition in old.foreign_keys:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {_q(name)} {definition}")
    cursor.execute(f"DROP TABLE {_q(old.name)}")
