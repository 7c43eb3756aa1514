"""The per-file cache of parsed county sources, so that a monthly run parses only new files.

An entry is keyed by the file's content (SHA-256 of its bytes) and a fingerprint of the
``sources`` configuration that parsed it: ``<sha256>-<fingerprint>.arrow`` holds the table
and ``<sha256>-<fingerprint>.json`` what else was read (kind, sheet, headers, the month column's
month). The table is an uncompressed Arrow IPC file, read memory-mapped: a month's person
table comes back in a fraction of a second, at the price of disk a little over the size of
the CSV (compressed entries and Parquet took longer to read back than the CSV took to parse). A file
renamed or moved is still found; a file edited, or a configuration changed, is parsed again.
Both files are written beside their place and renamed into it, the JSON last, so an entry is
complete or absent; an entry that cannot be read back whole is ignored (and rewritten by the
next parse). Entries hold no personal value (:mod:`riskmodel.sources._personal` replaces them
before an entry is written), only pseudonyms of 证件号码 under the folder's key; the folder and
its entries are readable by their owner only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ..config import SourcesConfig
from ..ledger import fsync_path, temp_beside

logger = logging.getLogger(__name__)

# Raised whenever the parsed form of a file changes, so that older entries are not reused.
CACHE_FORMAT = 1
ROW = "_row"


@dataclass(frozen=True)
class Parsed:
    """What parsing one file found, before its path and download month are known.

    ``kind`` None: no header of a known kind (``reason`` says why). ``column_month``: the one
    month of the file's month column, None when it has none.
    """

    kind: str | None
    reason: str | None = None
    sheet: str | None = None
    column_month: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    unmapped: int = 0
    frame: pd.DataFrame | None = None


def sources_fingerprint(sources: SourcesConfig) -> str:
    """Sixteen hex digits that change whenever ``sources`` (or the cache format) changes.

    Examples
    --------
    >>> from riskmodel.config import load_config
    >>> len(sources_fingerprint(load_config().sources))
    16
    """
    text = json.dumps({"format": CACHE_FORMAT, "sources": sources.model_dump(mode="json")},
                      ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class SourceCache:
    """Parsed files kept in ``folder``, for one ``sources`` configuration."""

    def __init__(self, folder: str | Path, sources: SourcesConfig, key: str = ""):
        self.folder = Path(folder)
        # Entries hold pseudonyms made with the folder's key: another key, other entries.
        tag = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
        self.fingerprint = f"{sources_fingerprint(sources)}{tag}"

    def _paths(self, sha256: str) -> tuple[Path, Path]:
        stem = f"{sha256}-{self.fingerprint}"
        return self.folder / f"{stem}.arrow", self.folder / f"{stem}.json"

    def load(self, sha256: str) -> Parsed | None:
        """The entry of a file's content, or None when absent or not readable whole."""
        table_path, meta_path = self._paths(sha256)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != CACHE_FORMAT:
                return None
            frame = None
            if meta["kind"] is not None:
                with pa.memory_map(str(table_path)) as source:
                    table = pa.ipc.open_file(source).read_all()
                if table.num_rows != meta["rows"] or table.column_names != meta["columns"]:
                    raise ValueError("entry does not match its description")
                frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype(),
                                                      pa.large_string(): pd.StringDtype()}.get)
            return Parsed(kind=meta["kind"], reason=meta["reason"], sheet=meta["sheet"],
                          column_month=meta["column_month"], headers=meta["headers"],
                          unmapped=meta["unmapped"], frame=frame)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
            logger.warning("cache entry %s cannot be read (%s); the file is parsed again",
                           meta_path.name, exc.__class__.__name__)
            return None

    def store(self, sha256: str, parsed: Parsed) -> None:
        """Write the entry of a file's content: the table first, its description last."""
        table_path, meta_path = self._paths(sha256)
        meta = {"format": CACHE_FORMAT, "kind": parsed.kind, "reason": parsed.reason,
                "sheet": parsed.sheet, "column_month": parsed.column_month,
                "headers": parsed.headers, "unmapped": parsed.unmapped}
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if parsed.frame is not None:
                _write_atomic(table_path, lambda tmp: _write_arrow(parsed.frame, tmp))
                meta |= {"rows": len(parsed.frame), "columns": list(parsed.frame.columns)}
            text = json.dumps(meta, ensure_ascii=False, sort_keys=True)
            _write_atomic(meta_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        except OSError as exc:
            logger.warning("cannot write the cache entry %s (%s); the file will be parsed "
                           "again next time", meta_path.name, exc.__class__.__name__)


    def prune(self, keep: set[str]) -> tuple[int, int]:
        """Remove the entries of contents not in ``keep`` (SHA-256 of the files the folder
        holds now), those made under another configuration or key, and the hidden files of
        writers that were stopped; return the files removed and their bytes.

        A month of a million households leaves about 1.5 GB of entries: a county running
        every month would otherwise keep every file it ever downloaded, replaced or removed
        ones included.
        """
        removed = freed = 0
        for path in self.folder.glob("*"):
            name = path.name
            entry = _ENTRY.fullmatch(name)
            stale = (entry is not None and (entry["sha"] not in keep
                                            or entry["fingerprint"] != self.fingerprint))
            stale |= _STOPPED.fullmatch(name) is not None
            if stale and path.is_file():
                try:
                    size = path.stat().st_size
                    path.unlink()
                except OSError as exc:
                    logger.warning("cannot remove the cache entry %s (%s)", name,
                                   exc.__class__.__name__)
                    continue
                removed, freed = removed + 1, freed + size
        return removed, freed


# A cache entry's files: the content's SHA-256, the configuration and key's fingerprint.
_ENTRY = re.compile(r"(?P<sha>[0-9a-f]{64})-(?P<fingerprint>[0-9a-f]{24})\.(?:arrow|json)")
# What a writer stopped before its rename left (``temp_beside``).
_STOPPED = re.compile(r"\.[0-9a-f]{64}-[0-9a-f]{24}\.(?:arrow|json)\.tmp-\d+")


class StoreBehind:
    """Cache entries written by one background thread while the caller goes on (writing a
    month's person table to disk and flushing it takes seconds the aggregation can use).

    :meth:`wait` (or leaving the ``with`` block) returns once every entry handed over is
    written or given up (:meth:`SourceCache.store` never raises for a disk that refuses).
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def store(self, cache: SourceCache, sha256: str, parsed: Parsed) -> None:
        """Write ``parsed`` into ``cache`` in the background."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-store")
        self._pending.append(self._pool.submit(cache.store, sha256, parsed))

    def wait(self) -> None:
        """Wait for every entry handed over; an unexpected error of one is raised here."""
        pending, self._pending = self._pending, []
        try:
            for future in pending:
                future.result()
        finally:
            if self._pool is not None and not self._pending:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> StoreBehind:
        return self

    def __exit__(self, kind, *exc) -> None:
        try:
            self.wait()
        except Exception as error:
            if kind is None:
                raise
            # The error already on its way out is the one to report.
            logger.warning("a cache entry could not be written (%s)",
                           error.__class__.__name__)


def _write_arrow(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _write_atomic(path: Path, write) -> None:
    """``write(tmp)`` a hidden file beside ``path``, flush it, rename it into place."""
    tmp = temp_beside(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o600)
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)
