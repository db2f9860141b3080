"""The built-in mappers by name, each with the reducer it implies and its layout.

`make` gives the Mapper for one run: its body depends on the input kind (an array, lines,
or files) and on whether the natural reducer folds it. With another --reduce the body
returns what the mapper means for one chunk (its count, mean, sorted values...) rather
than an internal state, so `--map mean --reduce concat` lists the chunks' means.
"""

from __future__ import annotations

import operator
import re

import numpy as np

from ..._combine import NOTHING
from .._exits import UsageError
from . import _array_ops, _sort, _text_ops
from ._model import Mapper, Reducer, Result
from ._names import ARRAY_MAPPERS, FILE_MAPPERS, NAMES, TEXT_MAPPERS  # noqa: F401
from ._reducers import BUILTIN as REDUCERS
from ._reducers import join, merge_into



def sample_kind(name: str) -> str:
    return "files" if name in FILE_MAPPERS else "lines" if name in TEXT_MAPPERS else "array"


def make(name: str, kind: str, args, *, natural: bool, runs_dir=None) -> Mapper:
    if name in ARRAY_MAPPERS:
        if kind == "files":
            raise UsageError(f"--map {name} works on an array (.npy, .npz) or on lines of "
                             f"numbers, not on files")
        mapper = _ARRAY[name](args, natural, runs_dir)
        if kind == "lines":  # one number per line
            inner = mapper.body
            mapper = Mapper(name, lambda lines: inner(_array_ops.numbers(lines)),
                            mapper.natural)
        return mapper
    if kind == "array":
        raise UsageError(f"--map {name} works on text or files, not on an array")
    if name in FILE_MAPPERS and kind != "files":
        raise UsageError(f"--map {name} works on files (a folder, a glob or --null), "
                         f"not on lines of text")
    return _TEXT[name](args, kind)


# --- arrays -----------------------------------------------------------------------------

def _plain(name, body, reducer):
    return lambda args, natural, runs_dir: Mapper(name, body, reducer)


def _moment(name):
    def pick(state):
        if state is NOTHING:  # a chunk of blank lines
            return NOTHING
        d = _array_ops.present(state)
        return d if name == "stats" else d[name]

    def make_it(args, natural, runs_dir):
        if not natural:
            return Mapper(name, lambda chunk: pick(_array_ops.moments(chunk)),
                          REDUCERS["concat"])
        finish = (lambda s: _stats(pick(s))) if name == "stats" else pick
        return Mapper(name, _array_ops.moments,
                      Reducer(name, _array_ops.merge_moments, finish=finish))
    return make_it


def _stats(d: dict) -> Result:
    width = max(map(len, d))
    return Result(d, ("name", "value"), lambda: d.items(),
                  lambda v: (f"{k:<{width}}  {_num(x)}" for k, x in v.items()))


def _histogram(args, natural, runs_dir):
    # The range is read when the chunks run: the runner finds it first (a min/max pass,
    # as np.histogram does) unless --range gave it, and sets args.histogram_range.
    def body(chunk):
        lo, hi, _ = args.histogram_range
        return np.histogram(chunk, bins=args.bins, range=(lo, hi))[0]

    def finish(counts):
        edges = _array_ops.histogram_edges(args.bins, *args.histogram_range)
        value = {"counts": counts, "edges": edges}
        rows = lambda: zip(edges[:-1].tolist(), edges[1:].tolist(), counts.tolist())  # noqa
        return Result(value, ("left", "right", "count"), rows, lambda v: _bars(rows()))

    return Mapper("histogram", body, Reducer("histogram", operator.add, finish=finish,
                                             empty=lambda: finish(np.zeros(args.bins, int))))


def _bars(rows):
    rows = list(rows)
    top = max((c for _, _, c in rows), default=0) or 1
    for lo, hi, c in rows:
        yield f"{lo:>12.6g} {hi:>12.6g} {c:>10}  {'#' * round(40 * c / top)}"


def _sort_mapper(args, natural, runs_dir):
    if not natural:
        return Mapper("sort", lambda c: np.sort(np.asarray(c), axis=None), REDUCERS["concat"])
    return Mapper("sort", _sort.spill(runs_dir),
                  Reducer("sort", REDUCERS["concat"].add, start=list,
                          finish=lambda runs: Result(_sort.Sorted(runs)),
                          empty=lambda: Result(_sort.Sorted([]))))


_ARRAY = {
    "sum": _plain("sum", _array_ops.chunk_sum, REDUCERS["sum"]),
    "count": _plain("count", _array_ops.chunk_count, REDUCERS["sum"]),
    "min": _plain("min", _array_ops.chunk_min, REDUCERS["min"]),
    "max": _plain("max", _array_ops.chunk_max, REDUCERS["max"]),
    "mean": _moment("mean"), "std": _moment("std"), "var": _moment("var"),
    "stats": _moment("stats"),
    "histogram": _histogram,
    "sort": _sort_mapper,
}


def range_mapper(kind: str) -> Mapper:
    """min and max in one pass: the range histogram needs before it can bin."""
    body = _array_ops.chunk_range
    if kind == "lines":
        body = lambda lines: _array_ops.chunk_range(_array_ops.numbers(lines))  # noqa: E731
    return Mapper("range", body, Reducer("range", _array_ops.merge_range))


# --- text and files ---------------------------------------------------------------------

def _reader(kind, fn):
    return (lambda paths: fn(_text_ops.lines_of(paths))) if kind == "files" else fn


def _counting(name, fn):
    return lambda args, kind: Mapper(name, _reader(kind, fn), REDUCERS["sum"])


def _wordfreq(args, kind):
    def finish(counts):
        top = _text_ops.top_words(counts, args.top)
        width = max((len(str(c)) for c in top.values()), default=1)
        return Result(top, ("word", "count"), lambda: top.items(),
                      lambda v: (f"{c:>{width}}  {w}" for w, c in v.items()))
    return Mapper("wordfreq", _reader(kind, _text_ops.word_counts),
                  Reducer("wordfreq", merge_into, start=dict, finish=finish,
                          empty=lambda: finish({})))


def _grep(args, kind):
    if args.pattern is None:
        raise UsageError("--map grep needs --pattern REGEX")
    try:
        regex = re.compile(args.pattern)
    except re.error as exc:
        raise UsageError(f"--pattern {args.pattern!r} is not a valid regular expression: "
                         f"{exc}") from None
    if kind == "files":  # (path, line number from 1, line): grep -n's layout
        columns, body, relocate = ("path", "line_number", "line"), \
            _text_ops.grep_files(regex), None
    else:  # (item index, line), the index made global as chunks are folded
        columns, body, relocate = ("index", "line"), _text_ops.grep_lines(regex), \
            _text_ops.relocate_matches
    return Mapper("grep", body, _table("grep", columns, lambda m: ":".join(map(str, m))),
                  relocate)


def _per_file(name, fn, columns, human):
    return lambda args, kind: Mapper(name, fn, _table(name, columns, human, keyed=True))


def _table(name, columns, human, keyed=False) -> Reducer:
    """Rows of every chunk, concatenated; a JSON object keyed by path when `keyed`."""
    def finish(parts):
        rows = join(parts)
        value = {path: v for v, path in rows} if keyed else rows
        return Result(value, columns, lambda: rows, lambda v: map(human, rows))
    return Reducer(name, REDUCERS["concat"].add, start=list, finish=finish,
                   empty=lambda: finish([]))


_TEXT = {
    "lines": _counting("lines", _text_ops.count_lines),
    "words": _counting("words", _text_ops.count_words),
    "wordfreq": _wordfreq,
    "grep": _grep,
    "sha256": _per_file("sha256", _text_ops.sha256_files, ("sha256", "path"),
                        lambda r: f"{r[0]}  {r[1]}"),
    "size": _per_file("size", _text_ops.size_files, ("bytes", "path"),
                      lambda r: f"{r[0]}\t{r[1]}"),
}


def _num(x) -> str:
    if isinstance(x, (float, np.floating)):
        return repr(float(x))
    return str(x.item() if isinstance(x, np.generic) else x)
