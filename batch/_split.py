"""Input to chunks: numpy views along axis 0, slices of sequences, groups of an iterable.

A chunk is described, not copied: for an array or a sequence the task only knows its
range, and the slice is taken inside the worker, where it is a view of (or points into)
the memory the coordinator already had. Only items of a lazy iterable are gathered into
a list in the coordinator, because nothing else holds them.
"""

from __future__ import annotations

import collections.abc
import itertools
import math
from typing import Any, Callable, Iterator

import numpy as np

from .backends._base import Task

# Sized input without a chunk size becomes this many chunks per worker: enough that a
# slow chunk does not leave the other cores idle at the end, few enough that forking
# (about 2 ms a chunk) stays a small share of the run.
CHUNKS_PER_WORKER = 4

# Input of unknown cost is cut into chunks that aim at this much work each, found by
# measuring the chunks already done: a chunk costs about 3 ms of CPU in forking, exiting
# and reaping, and 50 ms of work keeps that near 5%.
TARGET_CHUNK_SECONDS = 0.05
MAX_ADAPTIVE_CHUNK = 1 << 16

# A map over sized input first runs one probe chunk per worker, this fraction of the
# input per worker, to learn the cost of an item before cutting the rest. 200,000
# trivial items then take 4 chunks instead of 8 (half the fixed costs), and slow items
# still get CHUNKS_PER_WORKER chunks per worker.
PROBE_PARTS = 16


def positive(name: str, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def is_sliceable(data) -> bool:
    return isinstance(data, (np.ndarray, collections.abc.Sequence))


def length(data) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None


def ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """Split range(n) into `parts` contiguous pieces whose sizes differ by at most one."""
    parts = max(1, min(parts, n))
    base, extra = divmod(n, parts)
    out, start = [], 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        out.append((start, stop))
        start = stop
    return out if n else []


class Zipped(collections.abc.Sequence):
    """Several sliceable inputs as one sequence of argument tuples, zipped only when a
    chunk is sliced: in the worker, from the views it inherited, so a map over several
    arrays or lists stays copy-on-write and persistent workers run its spans."""

    def __init__(self, inputs):
        self._inputs = inputs
        self._n = min(len(x) for x in inputs)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(self._n)
            return list(zip(*(x[start:stop:step] for x in self._inputs)))
        if not -self._n <= i < self._n:
            raise IndexError("Zipped index out of range")
        return tuple(x[i % self._n] for x in self._inputs)


def zipped(inputs):
    """map(fn, a, b, ...)'s input: Zipped when every input is sliceable, else zip()."""
    if all(is_sliceable(x) and length(x) is not None for x in inputs):
        return Zipped(inputs)
    return zip(*inputs)


class Source:
    """Tasks in chunk order, made on demand; `feedback` tunes adaptive chunk sizes."""

    def __init__(self, tasks: Iterator[Task], total: int | None, sizer=None):
        self._tasks = tasks
        self.total = total
        self._sizer = sizer
        self._last: int | None = None

    def __iter__(self):
        return self

    def __next__(self) -> Task:
        task = next(self._tasks)
        if self._last is not None and task.index > self._last:
            raise StopIteration
        return task

    def stop_after(self, index: int) -> None:
        """Make no task past chunk `index`: a failure there ends the run anyway."""
        self._last = index if self._last is None else min(self._last, index)

    def feedback(self, count: int, seconds: float | None) -> None:
        if self._sizer is not None and seconds is not None:
            self._sizer.feedback(count, seconds)


class _Sizer:
    """Chunk sizes for lazy input: start at one item, grow toward TARGET_CHUNK_SECONDS."""

    def __init__(self):
        self.size = 1

    def feedback(self, count: int, seconds: float) -> None:
        per_item = max(seconds, 1e-7) / max(count, 1)
        ideal = int(TARGET_CHUNK_SECONDS / per_item)
        self.size = max(1, min(ideal, self.size * 4, MAX_ADAPTIVE_CHUNK))


class _Probe:
    """Chunk sizes for sized input of unknown cost: probe with small chunks, then split
    what is left by the measured cost of an item."""

    def __init__(self, n: int, workers: int):
        self.n, self.workers = n, workers
        self.probe = max(1, n // (workers * PROBE_PARTS))
        self.fallback = max(1, math.ceil(n / (workers * CHUNKS_PER_WORKER)))
        self.size: int | None = None
        self.handed = 0  # items given to tasks so far

    def next_size(self, index: int) -> int:
        if self.size is not None:
            return self.size
        return self.probe if index < self.workers else self.fallback

    def feedback(self, count: int, seconds: float) -> None:
        if self.size is not None:
            return
        remaining = self.n - self.handed
        work = max(seconds, 1e-7) / max(count, 1) * remaining
        parts = min(max(math.ceil(work / TARGET_CHUNK_SECONDS), self.workers),
                    self.workers * CHUNKS_PER_WORKER)
        self.size = max(1, math.ceil(remaining / parts))


def plan(data, body: Callable[[Any], Any], *, workers: int, chunks: int | None = None,
         chunksize: int | None = None, probe: bool = False) -> Source:
    """Tasks that run `body(chunk)` over `data`, with chunk = a view, slice or list.

    With `probe`, sized input without chunks or chunksize is cut by measured cost (for
    item-wise maps, whose results do not depend on where chunks begin); otherwise the
    plan is fixed by the input's length alone, so a map-reduce gives the same partials
    every time.
    """
    n = length(data)
    if is_sliceable(data) and n is not None:
        if probe and chunks is None and chunksize is None:
            sizer = _Probe(n, workers)
            return Source(_probed(data, body, sizer), n, sizer)
        if chunks is not None:
            parts = chunks
        elif chunksize is not None:
            parts = math.ceil(n / chunksize)
        else:
            parts = workers * CHUNKS_PER_WORKER
        return Source(_sliced(data, body, ranges(n, parts)), n)
    it = iter(data)
    if chunksize is None and chunks is not None and n is not None:
        chunksize = max(1, math.ceil(n / chunks))
    sizer = None if chunksize is not None else _Sizer()
    return Source(_grouped(it, body, chunksize, sizer), n, sizer)


def _sliced(data, body, spans) -> Iterator[Task]:
    for index, (start, stop) in enumerate(spans):
        yield Task(index, range(start, stop), stop - start, body, data, (start, stop),
                   shared=True)


def _probed(data, body, sizer: _Probe) -> Iterator[Task]:
    start = 0
    for index in itertools.count():
        if start >= sizer.n:
            return
        stop = min(sizer.n, start + sizer.next_size(index))
        sizer.handed = stop
        yield Task(index, range(start, stop), stop - start, body, data, (start, stop),
                   shared=True)
        start = stop


def _grouped(it, body, chunksize, sizer) -> Iterator[Task]:
    start = 0
    for index in itertools.count():
        size = chunksize if chunksize is not None else sizer.size
        items = list(itertools.islice(it, size))
        if not items:
            return
        stop = start + len(items)
        yield Task(index, range(start, stop), len(items), body, items)
        start = stop
