"""What a job is made of: a Mapper (runs in a worker), a Reducer (runs in the
coordinator, in chunk order) and the Result they produce.

    worker:       partial = mapper.body(chunk)        chunk: array rows, lines or paths
    coordinator:  acc = reducer.add(acc, relocate(partial, items before this chunk))
    end:          result = reducer.finish(acc)        -> Result for the output writers

A mapper written by a user for lines or files is called once per item, and the values
of one chunk are folded by the same reducer inside the worker (`Reducer.collect`), so
that only one partial per chunk crosses the pipe:

    reduce(R, map(M, items)) == reduce(R, [reduce(R, map(M, chunk)) for chunk in chunks])
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

from ..._combine import NOTHING


def _same(x):
    return x


@dataclasses.dataclass(frozen=True)
class Reducer:
    name: str
    add: Callable[[Any, Any], Any]            # (acc, partial) -> acc; may update acc in place
    start: Callable[[], Any] | None = None    # a fresh accumulator; None: the first partial
    finish: Callable[[Any], Any] = _same
    empty: Callable[[], Any] | None = None    # the result of an input with no items; None: error

    def collect(self, values: Iterable):
        """In a worker: the values of one chunk folded into one partial (NOTHING if none)."""
        acc = self.start() if self.start is not None else NOTHING
        for value in values:
            acc = value if acc is NOTHING else self.add(acc, value)
        return acc


@dataclasses.dataclass(frozen=True)
class Mapper:
    name: str
    body: Callable[[Any], Any]                # chunk -> partial, or NOTHING for no partial
    natural: Reducer                          # the reducer used when --reduce is not given
    relocate: Callable[[Any, int], Any] | None = None  # (partial, offset) -> partial


@dataclasses.dataclass
class Result:
    """A result and how to lay it out; `rows`/`columns` make it a table (CSV, .npy records)."""

    value: Any
    columns: tuple[str, ...] | None = None
    rows: Callable[[], Iterable[tuple]] | None = None
    human: Callable[[Any], Iterable[str]] | None = None  # lines for the terminal


class ItemError(Exception):
    """One item of a chunk failed: which one (its index in the chunk, the item), and why.

    The worker raises it from the original exception, so `--debug` shows both; the CLI
    turns the index into the item's position in the whole input when it knows it.
    """

    def __init__(self, index: int, item, reason: str, *, whole: bool = False):
        super().__init__(index, item, reason)
        self.index, self.item, self.reason = index, item, reason
        self.whole = whole  # a file name: cut, it would lose the part that names the file

    def __str__(self) -> str:
        return f"{repr(self.item) if self.whole else _short(self.item)}: {self.reason}"


def _short(item) -> str:
    text = repr(item)
    return text if len(text) <= 60 else text[:57] + "..."
