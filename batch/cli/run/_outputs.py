"""The result, for people (stdout), for scripts (--format json) or in a file (--output).

    --output FILE.json     JSON; NaN and infinity become null (JSON has neither)
    --output FILE.npy      arrays as they are; tables (wordfreq, grep, ...) as records
    --output FILE.msgpack  the same plain data as JSON, NaN kept
    --output FILE.csv      tables with a header row; arrays one row per row
    --output FILE          any other name (out, result.txt, /dev/stdout): exactly what
                           stdout would have shown, text or (--format json) JSON
    --output -             stdout itself

A regular file is written under a temporary name in its folder and renamed when complete,
so an error (or Ctrl-C) never leaves half an output; a path that exists and is not a
regular file (/dev/stdout, a FIFO, /dev/null) cannot be renamed over and is written
directly. Results too large to hold (sort's merged
runs) arrive as blocks and are written block by block.
"""

from __future__ import annotations

import csv
import json
import math
import os
import stat
import sys

import numpy as np

from ... import _wire
from .._exits import OutputFailed, UsageError, flush_stdout
from ._checkpoint import atomic_replace
from ._model import Result

class Target:
    """Where the result goes; checked before the run so that a typo costs nothing."""

    def __init__(self, args):
        # "-" is stdout, as INPUT "-" is stdin; it would otherwise make a file named "-".
        self.path = None if args.output == "-" else args.output
        self.format = args.format
        if self.path is None:
            return
        self.ext = os.path.splitext(self.path)[1].lower()
        try:
            self.direct = not stat.S_ISREG(os.stat(self.path).st_mode)
        except OSError:
            self.direct = False  # not there yet (or a dangling link): a new regular file
        if os.path.isdir(self.path):
            raise UsageError(f"--output {self.path}: is a folder")
        if self.direct:
            if not os.access(self.path, os.W_OK):
                raise UsageError(f"--output {self.path}: cannot write to it")
            return
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise UsageError(f"--output {self.path}: no such folder {folder}")
        if not os.access(folder, os.W_OK):
            raise UsageError(f"--output {self.path}: cannot write in {folder}")

    def write(self, result: Result) -> None:
        if self.path is None:
            out = sys.stdout
            if out is None:  # closed, with nothing to print (--reduce none): cli checked
                return
            try:
                _shown(out, result, self.format)
            except BrokenPipeError:
                raise
            except OSError as exc:  # ENOSPC, EIO: not the input's fault
                raise OutputFailed(f"cannot write the result to stdout: "
                                   f"{exc.strerror or exc}", stdout=True) from exc
            flush_stdout()
            return
        writer = _FILE_WRITERS.get(self.ext, self._as_shown)
        if self.direct:
            try:
                writer(self.path, result)
            except BrokenPipeError:
                raise
            except OSError as exc:
                raise OutputFailed(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        else:
            atomic_replace(self.path, lambda tmp: writer(tmp, result))

    def _as_shown(self, path, result) -> None:
        with open(path, "w", encoding="utf-8") as f:
            _shown(f, result, self.format)
            _sync(f)


def _shown(out, result: Result, fmt: str) -> None:
    """What stdout shows: text for people, or JSON with --format json."""
    if fmt == "json":
        _json(out, result)
    else:
        for line in _human(result):
            out.write(line + "\n")


def _is_stream(value) -> bool:
    return hasattr(value, "blocks")


# --- plain data (JSON, msgpack) -----------------------------------------------------------

def plain(value, finite: bool = True):
    """Python lists, dicts, str and numbers; with `finite`, NaN and infinities as None."""
    if isinstance(value, np.ndarray) or _is_stream(value):
        return plain(np.asarray(value).tolist(), finite)
    if isinstance(value, np.generic):
        return plain(value.item(), finite)
    if isinstance(value, float):
        return None if finite and not math.isfinite(value) else value
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(plain(k, finite)): plain(v, finite)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, finite) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _json(out, result: Result) -> None:
    value = result.value
    if _is_stream(value):  # one block at a time: never the whole list
        out.write("[")
        sep = ""
        for block in value.blocks():
            if block.size:
                out.write(sep + ", ".join(json.dumps(v) for v in plain(block)))
                sep = ", "
        out.write("]\n")
        return
    json.dump(plain(value), out, allow_nan=False)
    out.write("\n")


def _json_file(path, result):
    with open(path, "w", encoding="utf-8") as f:
        _json(f, result)
        _sync(f)


def _msgpack(path, result):
    _wire.save(path, plain(result.value, finite=False))


def _sync(f) -> None:
    f.flush()
    if stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # a pipe or tty refuses fsync (EINVAL)
        os.fsync(f.fileno())


# --- tables (CSV, .npy records, the terminal) --------------------------------------------

def _rows(result: Result):
    """(header or None, rows) for any result."""
    value = result.value
    if result.rows is not None:
        return result.columns, result.rows()
    if _is_stream(value):
        return ("value",), ((v,) for block in value.blocks() for v in block.tolist())
    if isinstance(value, np.ndarray):
        if value.ndim <= 1:
            return ("value",), ((v,) for v in value.reshape(-1).tolist())
        flat = value.reshape(len(value), -1)
        return tuple(str(i) for i in range(flat.shape[1])), map(tuple, flat.tolist())
    if isinstance(value, dict):
        return ("key", "value"), value.items()
    if isinstance(value, list):
        return None, (tuple(v) if isinstance(v, (list, tuple)) else (v,) for v in value)
    if value is None:
        return None, ()
    return ("value",), [(value,)]


# Values formatted per join when a column of numbers is written: a sorted array can hold
# 1e8 of them, and a csv row or a print per value is ten times slower.
BLOCK_VALUES = 1 << 16


def _number_column(value) -> bool:
    if _is_stream(value) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return value.dtype.kind in "biuf"
    return False


def _column_text(value):
    """A column of numbers as text, one value a line, a block of lines at a time."""
    if _is_stream(value):
        blocks = value.blocks()
    else:
        blocks = (value[i:i + BLOCK_VALUES] for i in range(0, len(value), BLOCK_VALUES))
    for block in blocks:
        if block.size:
            yield "\n".join(map(_cell, block.tolist()))


def _csv(path, result):
    with open(path, "w", newline="", encoding="utf-8") as f:
        if result.rows is None and _number_column(result.value):
            f.write("value\n")
            for text in _column_text(result.value):
                f.write(text + "\n")
        else:
            header, rows = _rows(result)
            w = csv.writer(f)
            if header:
                w.writerow(header)
            for row in rows:
                w.writerow([_cell(plain(c, finite=False)) for c in row])
        _sync(f)


def _npy(path, result):
    value = result.value
    with open(path, "wb") as f:
        if _is_stream(value):
            header = {"descr": np.lib.format.dtype_to_descr(value.dtype),
                      "fortran_order": False, "shape": (len(value),)}
            np.lib.format.write_array_header_2_0(f, header)
            for block in value.blocks():
                write_raw(f, block)
        else:
            array = _as_array(result)
            if not array.flags.c_contiguous:  # not ascontiguousarray: it makes 0-d 1-d
                array = array.copy(order="C")
            np.lib.format.write_array_header_2_0(
                f, np.lib.format.header_data_from_array_1_0(array))
            write_raw(f, array)
        _sync(f)


def write_raw(f, array: np.ndarray) -> None:
    """An array's bytes, through f.write: a full disk is then OSError(ENOSPC), not
    ndarray.tofile's errno-less '399983 requested and 130544 written'."""
    f.write(np.ascontiguousarray(array.reshape(-1)).view(np.uint8))


def _as_array(result: Result) -> np.ndarray:
    if result.rows is not None:
        rows = list(result.rows())
        if rows:
            return np.rec.fromrecords(rows, names=list(result.columns)).view(np.ndarray)
        return np.zeros(0, dtype=[(c, "f8") for c in result.columns])
    if result.value is None or isinstance(result.value, dict):
        raise UsageError(f"the result ({type(result.value).__name__}) is not an array; "
                         f"write it as .json, .msgpack or .csv")
    try:
        array = np.asarray(result.value)
    except ValueError as exc:  # ragged lists
        raise UsageError(f"the result cannot be an array ({exc}); "
                         f"write it as .json or .msgpack") from None
    if array.dtype.hasobject:
        raise UsageError("the result holds values of mixed types, not an array; "
                         "write it as .json or .msgpack")
    return array


_FILE_WRITERS = {".json": _json_file, ".npy": _npy, ".msgpack": _msgpack, ".csv": _csv}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _human(result: Result):
    if result.human is not None:
        yield from result.human(result.value)
        return
    value = result.value
    if _number_column(value):
        yield from _column_text(value)
    elif isinstance(value, (list, dict, np.ndarray)) or _is_stream(value):
        for row in _rows(result)[1]:
            yield "\t".join(_cell(plain(c, finite=False)) for c in row)
    elif value is not None:
        yield _cell(plain(value, finite=False))
