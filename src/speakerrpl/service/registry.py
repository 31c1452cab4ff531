"""Durable speaker registry: one SQLite file (WAL mode), no external database.

It holds the enrolled speakers, their enrollment embeddings (with the frontend that made them)
and those of each clip's channel copies (:mod:`speakerrpl.synth.enrollment_copies`), optionally
the enrollment audio, and the current fitted model with its version. The model is
stored as the files of ``OpenSetSpeakerIdentifier.save(dir)`` (JSON + safetensors) in rows of a
table: never pickle.

Consistency rule: every change of enrollment data and the model fitted on the resulting data
are written in **one** transaction (:meth:`SpeakerRegistry.commit`). The caller fits first,
outside any database lock, on a :meth:`SpeakerRegistry.snapshot`; ``commit`` then checks that the
data did not change since the snapshot (``data_version``) and refuses otherwise. Hence a reader
always sees a model fitted on exactly the committed speakers, a kill -9 at any moment leaves the
previous committed state, and a failed fit changes nothing. (A removal is the one exception: it
commits first, with the previous model restricted to the remaining speakers, see
:meth:`speakerrpl.service.engine.SpeakerEngine.remove`.) Every commit ends with a WAL
checkpoint, so removed data does not linger in ``-wal``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from speakerrpl.errors import (
    InvalidSpeakerNameError,
    ModelMismatchError,
    RegistryError,
    RegistryReadOnlyError,
    SpeakerNotFoundError,
)
from speakerrpl.service.database import connect, create_private, is_writable, translated
from speakerrpl.service.records import (
    ConcurrentChangeError,
    Enrollment,
    ModelRecord,
    Snapshot,
    name_key,
    validate_speaker_name,
)

__all__ = [
    "ConcurrentChangeError",
    "Enrollment",
    "ModelRecord",
    "Snapshot",
    "SpeakerRegistry",
    "validate_speaker_name",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 2: enrollments.sha256 (content de-duplication); 3: enrollments.copies
_MIGRATIONS = {"sha256": "TEXT", "copies": "BLOB"}  # columns added since schema 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS speakers (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS enrollments (
    id INTEGER PRIMARY KEY,
    speaker_id INTEGER NOT NULL REFERENCES speakers(id) ON DELETE CASCADE,
    frontend TEXT NOT NULL, dim INTEGER NOT NULL, embedding BLOB NOT NULL,
    audio BLOB, source TEXT, created REAL NOT NULL, sha256 TEXT, copies BLOB);
CREATE INDEX IF NOT EXISTS enrollments_speaker ON enrollments(speaker_id);
CREATE TABLE IF NOT EXISTS models (
    version INTEGER PRIMARY KEY, data_version INTEGER NOT NULL, kind TEXT NOT NULL,
    classes TEXT NOT NULL, info TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS model_files (
    version INTEGER NOT NULL REFERENCES models(version) ON DELETE CASCADE,
    name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (version, name));
"""


class SpeakerRegistry:
    """A speaker registry stored in one SQLite file.

    Args:
        path: the database file.
        create: create a missing registry (file 0600; a missing folder 0700). ``False`` (read
            commands) makes a missing file an error, so a mistyped path never creates one.
        read_only: open without writing anything; ``None`` decides from the file system (a
            read-only file or mount). A read-only registry serves reads and refuses changes
            with :class:`~speakerrpl.errors.RegistryReadOnlyError`.

    Example:
        >>> import tempfile, numpy as np
        >>> reg = SpeakerRegistry(tempfile.mkdtemp() + "/reg.db")
        >>> snap = reg.snapshot()
        >>> v = reg.commit(snap.data_version, "toy", add={"alice": [Enrollment(np.ones(4))]},
        ...                model_kind="identifier", model_classes=["alice"])
        >>> reg.speakers()[0]["name"], reg.current_model().kind
        ('alice', 'identifier')
    """

    def __init__(
        self, path: str | Path, *, create: bool = True, read_only: bool | None = None
    ) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise RegistryError(f"registry path {str(self.path)!r} is a directory, not a file")
        if not self.path.exists():
            if not create or read_only:
                raise RegistryError(
                    f"no registry at {str(self.path)!r} (check the path; read commands never "
                    "create one, `speakerrpl enroll` does)"
                )
            create_private(self.path)
        self.read_only = not is_writable(self.path) if read_only is None else read_only
        if self.read_only:
            logger.info("registry %s is read-only: identification only", self.path)
            with self._connection() as con:
                found = int(self._meta(con, "schema_version") or 0)
        else:
            with self._connection() as con:
                found = self._migrate(con)
        if found not in (1, 2, SCHEMA_VERSION):
            raise RegistryError(f"registry schema {found} is not supported (need {SCHEMA_VERSION})")
        self._schema = found

    def _migrate(self, con: sqlite3.Connection) -> int:
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(_SCHEMA)
        version = (str(SCHEMA_VERSION),)
        con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", version)
        con.execute("INSERT OR IGNORE INTO meta VALUES ('data_version', '0')")
        found = int(self._meta(con, "schema_version") or 0)
        if found in (1, 2):  # older registries: add the missing columns (clips keep no copies)
            columns = {row[1] for row in con.execute("PRAGMA table_info(enrollments)")}
            for column, kind in _MIGRATIONS.items():
                if column not in columns:
                    con.execute(f"ALTER TABLE enrollments ADD COLUMN {column} {kind}")
            con.execute("UPDATE meta SET value=? WHERE key='schema_version'", version)
            found = SCHEMA_VERSION
        return found

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        con = connect(self.path, self.read_only)
        try:
            with translated(self.path):
                yield con
        finally:
            con.close()

    def check_writable(self) -> None:
        """Raise :class:`RegistryReadOnlyError` when the registry is read-only."""
        if self.read_only:
            raise RegistryReadOnlyError(
                f"registry {str(self.path)!r} is read-only: it serves identification, "
                "but enrollment and removal need a writable file"
            )

    @staticmethod
    def _meta(con: sqlite3.Connection, key: str) -> str | None:
        row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def get_setting(self, key: str) -> str | None:
        """Return a stored setting (``far``, ``threshold`` ...), or ``None``."""
        with self._connection() as con:
            return self._meta(con, f"setting.{key}")

    def speakers(self) -> list[dict[str, object]]:
        """List enrolled speakers: ``name``, ``created`` (Unix time), ``n_enrollments``."""
        sql = (
            "SELECT s.name, s.created, COUNT(e.id) FROM speakers s "
            "LEFT JOIN enrollments e ON e.speaker_id = s.id GROUP BY s.id ORDER BY s.name"
        )
        with self._connection() as con:
            rows = con.execute(sql).fetchall()
        return [{"name": n, "created": c, "n_enrollments": k} for n, c, k in rows]

    def enrollments(self, name: str, with_embeddings: bool = False) -> list[dict[str, object]]:
        """The enrollment clips of ``name``: ``id``, ``source``, ``created``, ``has_audio``,
        ``frontend``, ``n_copies`` (and ``embedding`` as float32 and ``copies`` (C, D) or
        ``None`` when ``with_embeddings``), oldest first.

        Raises:
            SpeakerNotFoundError: ``name`` is not enrolled.
        """
        sql = (
            "SELECT e.id, e.source, e.created, e.audio IS NOT NULL, e.dim, e.embedding, "
            f"e.frontend, {self._copies_column} FROM enrollments e "
            "JOIN speakers s ON s.id = e.speaker_id WHERE s.name=? ORDER BY e.id"
        )
        with self._connection() as con:
            rows = con.execute(sql, (name,)).fetchall()
        if not rows:
            raise SpeakerNotFoundError(f"no enrolled speaker named {name!r}")
        out: list[dict[str, object]] = []
        for cid, source, created, has_audio, dim, blob, frontend, copy_blob in rows:
            copies = _decoded_copies(copy_blob, dim)
            row: dict[str, object] = {
                "id": cid, "source": source, "created": created,
                "has_audio": bool(has_audio), "frontend": frontend,
                "n_copies": 0 if copies is None else len(copies),
            }  # fmt: skip
            if with_embeddings:
                row["embedding"] = np.frombuffer(blob, dtype="<f4", count=dim).copy()
                row["copies"] = None if copies is None else copies.copy()
            out.append(row)
        return out

    def snapshot(self) -> Snapshot:
        """Read all enrollment embeddings at one consistent ``data_version``."""
        with self._connection() as con:
            con.execute("BEGIN")
            try:
                version = int(self._meta(con, "data_version") or 0)
                frontend = self._meta(con, "frontend")
                rows = con.execute(f"SELECT s.name, e.dim, e.embedding, {self._copies_column} "
                                   "FROM enrollments e JOIN speakers s ON s.id = e.speaker_id "
                                   "ORDER BY s.name, e.id").fetchall()  # fmt: skip
            finally:
                con.execute("COMMIT")
        groups: dict[str, list[np.ndarray]] = {}
        copies: dict[str, list[np.ndarray] | None] = {}
        for name, dim, blob, copy_blob in rows:
            groups.setdefault(name, []).append(np.frombuffer(blob, dtype="<f4", count=dim))
            have, clip_copies = copies.setdefault(name, []), _decoded_copies(copy_blob, dim)
            if have is None or clip_copies is None:  # a clip without copies: none for the person
                copies[name] = None
            else:
                have.append(clip_copies)
        return Snapshot(
            version, frontend, {n: np.stack(v) for n, v in groups.items()},
            {n: np.concatenate(v) for n, v in copies.items() if v},
        )  # fmt: skip

    @property
    def _copies_column(self) -> str:
        """``e.copies``, or ``NULL`` in a read-only registry of a schema without them."""
        return "NULL" if self._schema < 3 else "e.copies"

    def current_model(self) -> ModelRecord | None:
        """Return the committed model with its files, or ``None`` before the first commit."""
        with self._connection() as con:
            con.execute("BEGIN")
            try:
                row = con.execute(
                    "SELECT version, data_version, kind, classes, info FROM models "
                    "ORDER BY version DESC LIMIT 1"
                ).fetchone()
                files = []
                if row is not None:
                    files = con.execute(
                        "SELECT name, data FROM model_files WHERE version=?", (row[0],)
                    ).fetchall()
            finally:
                con.execute("COMMIT")
        if row is None:
            return None
        return ModelRecord(
            version=row[0], data_version=row[1], kind=row[2],
            classes=tuple(json.loads(row[3])), info=json.loads(row[4]),
            files={n: bytes(d) for n, d in files},
        )  # fmt: skip

    def model_version(self) -> int:
        """Version of the committed model (0 when none); a cheap query for cache checks."""
        with self._connection() as con:
            row = con.execute("SELECT MAX(version) FROM models").fetchone()
        return int(row[0] or 0)

    def commit(
        self,
        expected_data_version: int,
        frontend: str,
        *,
        add: Mapping[str, Sequence[Enrollment]] | None = None,
        remove: Sequence[str] = (),
        remove_enrollments: Sequence[int] = (),
        model_kind: str,
        model_classes: Sequence[str],
        model_files: Mapping[str, bytes] | None = None,
        model_info: Mapping[str, object] | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> int:
        """Apply a change and its refitted model in one transaction; return the model version.

        Raises:
            ConcurrentChangeError: the data changed since ``expected_data_version``.
            SpeakerNotFoundError: a name in ``remove`` is not enrolled.
            ModelMismatchError: ``frontend`` or the embedding size differs from the registry's.
        """
        add = add or {}
        self.check_writable()
        with self._connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                version = self._check_version(con, expected_data_version, frontend)
                self._remove(con, remove)
                self._remove_enrollments(con, remove_enrollments)
                self._add(con, frontend, add)
                if add or remove or remove_enrollments:
                    version += 1
                new_model = self._write_model(
                    con, version, model_kind, model_classes, model_files or {}, model_info or {}
                )
                for key, value in (settings or {}).items():
                    con.execute(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"setting.{key}", value)
                    )
                con.execute("UPDATE meta SET value=? WHERE key='data_version'", (str(version),))
                con.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (e.g. "database or disk is full"): a
                # second ROLLBACK would raise "no transaction is active" and hide the cause
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            self._checkpoint(con)
        logger.info("registry %s: data v%d, model v%d", self.path.name, version, new_model)
        return new_model

    def _checkpoint(self, con: sqlite3.Connection) -> None:
        """Move the WAL into the file and truncate it: removed data leaves the WAL at once,
        and a copy of the main file alone (e.g. onto read-only media) is complete."""
        for _ in range(20):
            busy, _log, _done = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.05)
        logger.warning("registry %s: WAL checkpoint blocked by a reader", self.path.name)

    def check_new_name(self, name: str) -> None:
        """Refuse ``name`` when an enrolled name differs from it only in case or look-alikes.

        Raises:
            InvalidSpeakerNameError: e.g. ``ALICE`` or a Cyrillic ``аlice`` beside ``alice``.
        """
        with self._connection() as con:
            existing = {name_key(n): n for (n,) in con.execute("SELECT name FROM speakers")}
        twin = existing.get(name_key(name), name)
        if twin != name:
            raise InvalidSpeakerNameError(
                f"speaker name {name!r} is too similar to the enrolled {twin!r} "
                "(differs only in case or look-alike letters)"
            )

    def enrolled_hashes(self, hashes: Sequence[str]) -> dict[str, str]:
        """``{sha256: speaker name}`` of the given clip hashes already enrolled."""
        if not hashes:
            return {}
        marks = ",".join("?" * len(hashes))
        sql = (
            "SELECT e.sha256, s.name FROM enrollments e JOIN speakers s ON s.id = e.speaker_id "
            f"WHERE e.sha256 IN ({marks})"
        )
        with self._connection() as con:
            return {str(h): str(n) for h, n in con.execute(sql, list(hashes)).fetchall()}

    def _check_version(self, con: sqlite3.Connection, expected: int, frontend: str) -> int:
        version = int(self._meta(con, "data_version") or 0)
        if version != expected:
            raise ConcurrentChangeError(
                f"registry changed during the refit (data version {expected} -> {version})"
            )
        stored = self._meta(con, "frontend")
        if stored is None:
            con.execute("INSERT INTO meta VALUES ('frontend', ?)", (frontend,))
        elif stored != frontend:
            raise ModelMismatchError(
                f"registry holds {stored!r} embeddings; cannot mix in {frontend!r} embeddings"
            )
        return version

    @staticmethod
    def _remove(con: sqlite3.Connection, names: Sequence[str]) -> None:
        for name in names:
            cur = con.execute("DELETE FROM speakers WHERE name=?", (name,))
            if cur.rowcount == 0:
                raise SpeakerNotFoundError(f"no enrolled speaker named {name!r}")

    @staticmethod
    def _remove_enrollments(con: sqlite3.Connection, ids: Sequence[int]) -> None:
        for cid in ids:
            if con.execute("DELETE FROM enrollments WHERE id=?", (int(cid),)).rowcount == 0:
                raise SpeakerNotFoundError(f"no enrollment clip with id {cid}")

    @staticmethod
    def _add(
        con: sqlite3.Connection, frontend: str, add: Mapping[str, Sequence[Enrollment]]
    ) -> None:
        now = time.time()
        existing = {name_key(n): n for (n,) in con.execute("SELECT name FROM speakers")}
        for name, items in add.items():
            name = validate_speaker_name(name)
            if existing.get(name_key(name), name) != name:
                raise InvalidSpeakerNameError(
                    f"speaker name {name!r} is too similar to the enrolled "
                    f"{existing[name_key(name)]!r} (differs only in case or look-alike letters)"
                )
            existing[name_key(name)] = name
            con.execute("INSERT OR IGNORE INTO speakers (name, created) VALUES (?, ?)", (name, now))
            (sid,) = con.execute("SELECT id FROM speakers WHERE name=?", (name,)).fetchone()
            dims = {
                int(d)
                for (d,) in con.execute("SELECT DISTINCT dim FROM enrollments LIMIT 2").fetchall()
            }
            for item in items:
                emb = np.asarray(item.embedding, dtype="<f4").ravel()
                copies = None if item.copies is None else np.asarray(item.copies, dtype="<f4")
                if (dims and emb.size not in dims) or not np.isfinite(emb).all():
                    raise ModelMismatchError(
                        f"embedding of size {emb.size} (or non-finite) does not match the "
                        f"registry's size {sorted(dims)}"
                    )
                if copies is not None and (
                    copies.ndim != 2 or copies.shape[1] != emb.size or not np.isfinite(copies).all()
                ):
                    raise ModelMismatchError(
                        f"channel copies of shape {copies.shape} (or non-finite) do not match "
                        f"the clip's {emb.size}-d embedding"
                    )
                dims.add(emb.size)
                con.execute(
                    "INSERT INTO enrollments (speaker_id, frontend, dim, embedding, audio, "
                    "source, created, sha256, copies) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (sid, frontend, emb.size, emb.tobytes(), item.audio, item.source, now,
                     item.sha256, None if copies is None else copies.tobytes()),
                )  # fmt: skip

    def _write_model(
        self,
        con: sqlite3.Connection,
        data_version: int,
        kind: str,
        classes: Sequence[str],
        files: Mapping[str, bytes],
        info: Mapping[str, object],
    ) -> int:
        names = [r[0] for r in con.execute("SELECT name FROM speakers ORDER BY name")]
        if sorted(classes) != names:
            raise RegistryError(f"model classes {sorted(classes)} do not match speakers {names}")
        row = con.execute("SELECT MAX(version) FROM models").fetchone()
        version = int(row[0] or 0) + 1
        con.execute("DELETE FROM models")  # only the current model is kept
        con.execute(
            "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?)",
            (version, data_version, kind, json.dumps(list(classes)), json.dumps(info), time.time()),
        )
        con.executemany(
            "INSERT INTO model_files VALUES (?, ?, ?)",
            [(version, n, sqlite3.Binary(d)) for n, d in files.items()],
        )
        return version

    def verify(self) -> list[str]:
        """Check the registry's invariants; return the problems found (empty = consistent)."""
        problems: list[str] = []
        with self._connection() as con:
            (check,) = con.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                problems.append(f"sqlite integrity_check: {check}")
            data_version = int(self._meta(con, "data_version") or 0)
            names = [r[0] for r in con.execute("SELECT name FROM speakers ORDER BY name")]
            empty = con.execute(
                "SELECT s.name FROM speakers s LEFT JOIN enrollments e ON e.speaker_id=s.id "
                "GROUP BY s.id HAVING COUNT(e.id)=0"
            ).fetchall()
            problems += [f"speaker {n!r} has no enrollments" for (n,) in empty]
        model = self.current_model()
        if model is None:
            if names or data_version:
                problems.append("enrollment data exists but no model was committed")
        else:
            if model.data_version != data_version:
                problems.append(
                    f"model fitted on data v{model.data_version}, data is v{data_version}"
                )
            if sorted(model.classes) != names:
                problems.append(f"model classes {sorted(model.classes)} != speakers {names}")
        return problems


def _decoded_copies(blob: bytes | None, dim: int) -> np.ndarray | None:
    """The (C, dim) channel-copy embeddings stored in a clip's row, or ``None``."""
    return None if blob is None else np.frombuffer(blob, dtype="<f4").reshape(-1, dim)
