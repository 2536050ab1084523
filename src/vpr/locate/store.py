"""The rows of a location index: image metadata in SQLite, descriptors in an append-only file.

A store is a folder beside the index's versions::

    INDEX/store-1/
      images.sqlite     one row per image (id = row of the descriptors), WAL mode; the
                        model's identity and the index type in table ``info``
      descriptors.f32   (rows, dim) float32, raw (no header), memory-mapped when read

Both only grow: ``index add`` appends descriptors at the end of the file and inserts rows
in one transaction, so the cost of an add is that of the new images, whatever the index
size. Which rows exist is said by the index's current version (``v-N/version.json``,
``rows``), not by the files: a reader maps and queries only rows below its version's
count, so rows being appended by a writer (or left by a crashed one) are invisible until
the version that counts them is published; `recover_tail` removes rows that no version
counts. Opening a store reads neither file: rows are read by id when asked.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from vpr.locate.geo import bounding_boxes, haversine_m

logger = logging.getLogger(__name__)

DATABASE_FILE = "images.sqlite"
DESCRIPTORS_FILE = "descriptors.f32"
# The per-image columns, in the order of meta.json's "images" lists (format 1).
COLUMNS = ("path", "utm_east", "utm_north", "utm_zone_number", "utm_zone_letter", "latitude",
           "longitude")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    utm_east REAL, utm_north REAL, utm_zone_number INTEGER, utm_zone_letter TEXT,
    latitude REAL, longitude REAL);
CREATE INDEX IF NOT EXISTS images_latlon ON images (latitude, longitude);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Rows inserted per executemany call while migrating or building.
INSERT_ROWS = 10000
# Ids per "IN (...)" query (SQLite's default limit of host parameters is 32766).
IDS_PER_QUERY = 900


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode: transactions are opened explicitly (BEGIN IMMEDIATE) by writers.
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                 timeout=60.0)
    connection.execute("PRAGMA journal_mode=WAL")
    # A committed add must survive a power cut before its version is published.
    connection.execute("PRAGMA synchronous=FULL")
    return connection


class Column(Sequence):
    """One column of the first ``rows`` images, read from SQLite on access (not at open).

    ``paths[i]``, ``len(paths)``, iteration and ``paths.index(path)`` (an indexed lookup)
    work as on a list.
    """

    def __init__(self, store: ImageStore, name: str) -> None:
        self._store, self._name = store, name

    def __len__(self) -> int:
        return self._store.rows

    @overload
    def __getitem__(self, item: int) -> Any: ...

    @overload
    def __getitem__(self, item: slice) -> list[Any]: ...

    def __getitem__(self, item):
        if isinstance(item, slice):
            ids = range(*item.indices(len(self)))
            return [self._store.record(i)[self._name] for i in ids]
        item = int(item)
        if item < 0:
            item += len(self)
        if not 0 <= item < len(self):
            raise IndexError(f"row {item} out of range (0..{len(self) - 1})")
        return self._store.record(item)[self._name]

    def __iter__(self) -> Iterator[Any]:
        yield from self._store.column_values(self._name)

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        if self._name == "path":
            found = self._store.id_of(value)
            if found is not None and start <= found < (len(self) if stop is None else stop):
                return found
            raise ValueError(f"{value!r} is not in the index")
        return super().index(value, start, len(self) if stop is None else stop)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Column({self._name}, {len(self)} rows)"


class ImageStore:
    """The first ``rows`` rows of a store folder (module docstring).

    Args:
        folder: the store folder.
        rows: how many rows the index's version counts.
        dim: the descriptors' dimension.
    """

    def __init__(self, folder: str | Path, rows: int, dim: int) -> None:
        self.folder = Path(folder)
        self.rows, self.dim = int(rows), int(dim)
        database = self.folder / DATABASE_FILE
        if not database.is_file():
            raise FileNotFoundError(f"{database}: the index's image store is missing")
        self._connection = _connect(database)
        self._lock = threading.Lock()  # one connection shared by the server's threads
        self._descriptors: np.ndarray | None = None

    @classmethod
    def in_memory(cls, records: Mapping[str, Sequence[Any]], descriptors: np.ndarray,
                  info: Mapping[str, Any]) -> ImageStore:
        """A store of the given rows kept in memory: a read-only view of an old index."""
        store = cls.__new__(cls)
        store.folder = Path(":memory:")
        store.rows, store.dim = len(records["paths"]), int(descriptors.shape[1])
        store._connection = sqlite3.connect(":memory:", isolation_level=None,
                                            check_same_thread=False)
        store._connection.executescript(_SCHEMA)
        store._lock = threading.Lock()
        store._descriptors = descriptors
        store._insert(records, 0, info)
        return store

    # ---- writing (the caller holds the index's lock)

    @classmethod
    def create(cls, folder: str | Path, dim: int, info: Mapping[str, Any]) -> ImageStore:
        """A new, empty store folder with its schema and ``info`` (model identity...)."""
        folder = Path(folder)
        folder.mkdir(parents=True)
        connection = _connect(folder / DATABASE_FILE)
        connection.executescript(_SCHEMA)
        connection.close()
        (folder / DESCRIPTORS_FILE).touch()
        store = cls(folder, 0, dim)
        store._insert({column + "s" if column == "path" else column: [] for column in COLUMNS},
                      0, info)
        return store

    def _insert(self, records: Mapping[str, Sequence[Any]], first_id: int,
                info: Mapping[str, Any] | None = None) -> None:
        """Inserts rows ``first_id...`` (and ``info`` items) in one transaction."""
        columns = [records["paths"], *(records[name] for name in COLUMNS[1:])]
        count = len(columns[0])
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, count, INSERT_ROWS):
                    end = min(start + INSERT_ROWS, count)
                    cursor.executemany(
                        f"INSERT INTO images (id, {', '.join(COLUMNS)}) VALUES "
                        f"(?, {', '.join('?' * len(COLUMNS))})",
                        ((first_id + row, *(column[row] for column in columns))
                         for row in range(start, end)))
                for key, value in (info or {}).items():
                    cursor.execute("INSERT OR REPLACE INTO info (key, value) VALUES (?, ?)",
                                   (key, json.dumps(value)))
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise

    def append(self, records: Mapping[str, Sequence[Any]], descriptors: np.ndarray,
               chunk_rows: int = 65536) -> int:
        """Appends rows after the first ``rows`` (descriptors, then metadata); returns the new
        row count. Nothing is visible to readers until a version counting them is published.
        """
        count = len(records["paths"])
        if descriptors.shape != (count, self.dim):
            raise ValueError(f"expected ({count}, {self.dim}) descriptors, got "
                             f"{descriptors.shape}")
        path = self.folder / DESCRIPTORS_FILE
        with open(path, "r+b") as file:
            file.seek(self.rows * self.dim * 4)
            for start in range(0, count, chunk_rows):
                block = np.ascontiguousarray(descriptors[start : start + chunk_rows],
                                             dtype=np.float32)
                file.write(block.tobytes())
            file.truncate()
            file.flush()
            os.fsync(file.fileno())
        self._insert(records, self.rows)
        self.rows += count
        self._descriptors = None
        return self.rows

    def recover_tail(self) -> int:
        """Removes rows past ``rows`` (left by a write that was never published).

        Returns:
            The number of metadata rows removed.
        """
        path = self.folder / DESCRIPTORS_FILE
        size = self.rows * self.dim * 4
        if path.stat().st_size > size:
            os.truncate(path, size)
        with self._lock:
            removed = self._connection.execute("DELETE FROM images WHERE id >= ?",
                                               (self.rows,)).rowcount
        return removed

    def has_tail(self) -> bool:
        """Whether rows past ``rows`` exist (an unpublished or interrupted write)."""
        if (self.folder / DESCRIPTORS_FILE).stat().st_size > self.rows * self.dim * 4:
            return True
        with self._lock:
            return self._connection.execute("SELECT 1 FROM images WHERE id >= ? LIMIT 1",
                                            (self.rows,)).fetchone() is not None

    def close(self) -> None:
        self._descriptors = None
        with self._lock:
            self._connection.close()

    # ---- reading

    @property
    def info(self) -> dict[str, Any]:
        """The ``info`` table: model identity, index type, creation..."""
        with self._lock:
            rows = self._connection.execute("SELECT key, value FROM info").fetchall()
        return {key: json.loads(value) for key, value in rows}

    @property
    def descriptors(self) -> np.ndarray:
        """(rows, dim) float32 descriptors, memory-mapped (read only as rows are touched)."""
        if self._descriptors is None:
            if self.rows == 0:
                self._descriptors = np.zeros((0, self.dim), np.float32)
            else:
                self._descriptors = np.memmap(self.folder / DESCRIPTORS_FILE, dtype=np.float32,
                                              mode="r", shape=(self.rows, self.dim))
        return self._descriptors

    def record(self, item: int) -> dict[str, Any]:
        """Path and coordinates of row ``item`` (the keys of `COLUMNS`)."""
        if not 0 <= item < self.rows:
            raise IndexError(f"row {item} out of range (0..{self.rows - 1})")
        with self._lock:
            row = self._connection.execute(
                f"SELECT {', '.join(COLUMNS)} FROM images WHERE id = ?", (int(item),)
            ).fetchone()
        if row is None:
            raise LookupError(f"{self.folder}: row {item} is missing from {DATABASE_FILE}")
        return dict(zip(COLUMNS, row))

    def id_of(self, path: str) -> int | None:
        """The row of an image path, or None."""
        with self._lock:
            row = self._connection.execute("SELECT id FROM images WHERE path = ? AND id < ?",
                                           (str(path), self.rows)).fetchone()
        return None if row is None else int(row[0])

    def known_paths(self, paths: Sequence[str]) -> set[str]:
        """Which of ``paths`` the store holds."""
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(paths), IDS_PER_QUERY):
                chunk = [str(path) for path in paths[start : start + IDS_PER_QUERY]]
                found.update(row[0] for row in self._connection.execute(
                    f"SELECT path FROM images WHERE id < ? AND path IN "
                    f"({', '.join('?' * len(chunk))})", (self.rows, *chunk)))
        return found

    def column_values(self, name: str) -> Iterator[Any]:
        """Every value of one column, in row order (streamed)."""
        if name not in COLUMNS:
            raise KeyError(name)
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {name} FROM images WHERE id < ? ORDER BY id", (self.rows,)).fetchall()
        for (value,) in rows:
            yield value

    def ids_near(self, latitude: float, longitude: float, radius_m: float) -> np.ndarray:
        """Sorted rows whose latitude/longitude lie within ``radius_m`` metres (great circle).

        A range query on the indexed latitude/longitude box, then the exact distance.
        """
        found_ids, found_lat, found_lon = [], [], []
        with self._lock:
            for low, high, west, east in bounding_boxes(latitude, longitude, radius_m):
                for item, lat, lon in self._connection.execute(
                        "SELECT id, latitude, longitude FROM images WHERE latitude BETWEEN ? "
                        "AND ? AND longitude BETWEEN ? AND ? AND id < ?",
                        (low, high, west, east, self.rows)):
                    found_ids.append(item)
                    found_lat.append(lat)
                    found_lon.append(lon)
        ids = np.asarray(found_ids, np.int64)
        if len(ids):
            ids = ids[haversine_m(latitude, longitude, np.asarray(found_lat),
                                  np.asarray(found_lon)) <= radius_m]
        return np.unique(ids)  # two boxes may share their edge meridian

    def count_without_latlon(self) -> int:
        """Rows with no latitude/longitude (never inside a geographic prior)."""
        with self._lock:
            return int(self._connection.execute(
                "SELECT COUNT(*) FROM images WHERE id < ? AND (latitude IS NULL OR longitude "
                "IS NULL)", (self.rows,)).fetchone()[0])
