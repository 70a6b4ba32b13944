"""A big CSV import file read and checked by several processes at once, its records streamed to one COPY.

An import's Python pass (each row checked with the registry's rules: ``resolvers/household_import.py``) runs at ≈ 35 µs
a row in one process, while PostgreSQL, receiving the COPY, mostly waits. ``split_csv`` (``resolvers/tabular.py``) cuts
the file between records, exactly where the csv module ends them (quoted line breaks included); each part is read by a
process of its own (``csv_part_rows``: the same reader, limits and row numbers as ``open_table``), checked by the same
code as in one process (``job``), and its records come back in batches to the importing process, which streams them into
the staging table in the order they arrive (the staging rows carry their row number; the problems are sorted by row).

Processes start from a ``forkserver`` (never a fork of the running service, its threads and connections) with the
import modules loaded once. Used for CSV files of ``PARALLEL_MIN_BYTES`` and more: below that, starting the processes
costs more than it saves. XLSX and GeoPackage files are read in one process (a zip stream or a GDAL layer has no cut
points a process could seek to).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from resolvers.tabular import CsvPart, FileLimits, FileRefused, Table, csv_part_rows, csv_refusal, split_csv, too_many_rows

PARALLEL_MIN_BYTES = 8 << 20
"""CSV files from this size (8 MiB, ≈ 50,000 roster rows) are read by several processes."""
MAX_PROCESSES = 4
BATCH = 4_000
"""Records sent back at a time (a pickled list: ≈ 2 µs a record each way)."""

Job = Callable[[Iterator[tuple[int, list[Any]]]], tuple[Iterator[tuple[Any, ...]], Callable[[], Any]]]
"""A part's work: its rows (number, cells) → (the staging records, a function giving the part's summary once they are
all read). A module-level function (or a ``functools.partial`` of one): it is pickled into the reading process."""


def processes() -> int:
    """How many processes read a big file: the CPUs this process may use (at most ``MAX_PROCESSES``)."""
    return max(1, min(MAX_PROCESSES, len(os.sched_getaffinity(0))))


def read_in_parts(
    path: str | Path, table: Table, limits: FileLimits, job: Job, merge: Callable[[Any], None], wanted: int | None = None
) -> tuple[AsyncIterator[tuple[Any, ...]], int] | None:
    """A big CSV file's records read by several processes (``records_in_parts``), and how many; None: read it in this one.

    Several when ``table`` is a CSV of ``PARALLEL_MIN_BYTES`` or more and ``split_csv`` cuts it (a cuttable encoding,
    long enough), by ``wanted`` processes (None: ``processes()``). ``table`` (open, its header read) is then closed.
    A refusal found while cutting is left to the reading in this process, which meets it where one process does (after
    the importer's own checks of the viewer).
    """
    n = processes() if wanted is None else wanted
    if table.kind != "csv" or not table.encoding or n < 2 or Path(path).stat().st_size < PARALLEL_MIN_BYTES:
        return None
    try:
        parts = split_csv(path, table.encoding, n, limits)
    except FileRefused:
        return None
    if len(parts) < 2:
        return None
    table.close()
    return records_in_parts(path, table.encoding, parts, limits, table.header, job, merge), len(parts)


def _counted(rows: Iterator[tuple[int, list[Any]]], seen: list[int]) -> Iterator[tuple[int, list[Any]]]:
    for row in rows:
        seen[0] += 1
        yield row


def _read_part(
    job: Job, path: str, encoding: str, part: CsvPart, limits: FileLimits, header: list[str], out: Any, k: int
) -> None:
    """A reading process: part ``k`` of the file read, checked by ``job``, sent to ``out``.

    Sends (k, kind, payload): ``rows`` (a batch of records), then ``done`` (rows read, ``job``'s summary); or ``refused``
    (a FileRefused message), or ``failed`` (anything else: a programming error, reported, not hidden).
    """
    _end_with_importer()
    try:
        seen = [0]
        records, summary = job(_counted(csv_part_rows(path, encoding, part, limits, header), seen))
        batch: list[tuple[Any, ...]] = []
        for record in records:
            batch.append(record)
            if len(batch) == BATCH:
                out.put((k, "rows", batch))
                batch = []
        out.put((k, "rows", batch))
        out.put((k, "done", (seen[0], summary())))
    except FileRefused as exc:
        out.put((k, "refused", exc.message))
    except BaseException as exc:  # noqa: BLE001 — sent to the importing process, which raises it
        out.put((k, "failed", f"{type(exc).__name__}: {exc}"))


def _end_with_importer() -> None:
    """This reading process ends when the importing process does.

    Killed, the importer reads nothing more: this process would wait on the full queue for ever, an orphan. A thread
    waits on the importer's sentinel (readable once it has ended).
    """
    importer = multiprocessing.parent_process()
    if importer is not None:
        threading.Thread(target=_exit_after, args=(importer.sentinel,), daemon=True).start()


def _exit_after(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


_context: Any = None


def _forkserver() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["resolvers.household_import"])
    return _context


async def records_in_parts(
    path: str | Path,
    encoding: str,
    parts: list[CsvPart],
    limits: FileLimits,
    header: list[str],
    job: Job,
    merge: Callable[[Any], None],
) -> AsyncIterator[tuple[Any, ...]]:
    """The staging records of every part of a CSV file, each part read and checked by ``job`` in a process of its own.

    ``merge`` is called with each part's summary (in the order the parts finish). The reading processes are stopped when
    the records end, when the file is refused, and when the caller stops (an error, a cancellation, ``aclose``).

    Raises:
        FileRefused: the file's refusal as reading it in one process finds it (``csv_refusal``), once a part is refused
            or the parts read have more than ``limits.max_rows`` rows: a part's own refusal may come after a refusal in
            an earlier part, or after the file's last allowed row, and an undecodable byte's row depends on where the
            reading began.
        RuntimeError: a reading process failed or ended without its result.
    """
    ctx = _forkserver()
    out = ctx.Queue(maxsize=4 * len(parts))
    procs = [
        ctx.Process(target=_read_part, args=(job, str(path), encoding, p, limits, header, out, k), daemon=True)
        for k, p in enumerate(parts)
    ]
    loop = asyncio.get_running_loop()
    finished: set[int] = set()
    seen = 0
    refused: str | None = None
    dead_before: set[int] = set()
    try:
        for p in procs:
            p.start()
        while len(finished) < len(procs) and refused is None and seen <= limits.max_rows:
            try:
                k, kind, payload = await loop.run_in_executor(None, out.get, True, 2.0)
            except queue.Empty:
                # A process that ended had sent all it put (a queue's feeder thread is joined before the process ends):
                # one that had ended before this wait, with nothing more to read, lost its result. (One that ends during
                # the wait may have sent it just now.)
                dead = {k for k, p in enumerate(procs) if k not in finished and not p.is_alive()}
                if lost := sorted(dead & dead_before):
                    k = lost[0]
                    raise RuntimeError(
                        f"import: reading process {k} ended without its result (exit {procs[k].exitcode})"
                    ) from None
                dead_before = dead
                continue
            if kind == "rows":
                for record in payload:
                    yield record
            elif kind == "done":
                finished.add(k)
                seen += payload[0]
                merge(payload[1])
            elif kind == "refused":
                refused = payload
            else:
                raise RuntimeError(f"import: reading process {k} failed: {payload}")
        if refused is None and seen <= limits.max_rows:
            return
        _stop(procs)
        if refused is None and len(finished) == len(procs):
            raise too_many_rows(limits)  # every part read, none refused: nothing before the row count
        first = await loop.run_in_executor(None, csv_refusal, path, encoding, limits)
        if first is None:  # not expected (a part's refusal is the file's); the part's then
            first = FileRefused(refused) if refused is not None else too_many_rows(limits)
        raise first
    finally:
        _stop(procs)
        out.close()


def _stop(procs: list[Any]) -> None:
    """The reading processes ended (killed when still running: blocked on a full queue, or reading on)."""
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        if p.pid is not None:
            p.join()
