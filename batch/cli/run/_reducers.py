"""The built-in reducers: sum, concat, merge, min, max, none; and user reducers.

Each folds partials in chunk order. min and max go through numpy's minimum/maximum for
numbers, so that a NaN wins as it does in np.min (Python's min() keeps whichever
operand came first when one is NaN).
"""

from __future__ import annotations

import numbers
import operator

import numpy as np

from .._exits import UsageError
from ._model import Reducer


def _append(parts: list, partial) -> list:
    parts.append(partial)
    return parts


def join(parts: list):
    """Concatenated partials: one array if every part is an array, else one flat list."""
    if parts and all(isinstance(p, np.ndarray) and p.ndim for p in parts):
        return np.concatenate(parts)
    out: list = []
    for p in parts:
        if isinstance(p, list) or (isinstance(p, np.ndarray) and p.ndim):
            out.extend(p)
        else:
            out.append(p)
    return out


def _is_number(x) -> bool:
    return isinstance(x, (numbers.Number, np.number)) and not isinstance(x, bool)


def merge_into(acc: dict, partial) -> dict:
    """Keys of `partial` into `acc`: numbers add up (Counter-style), anything else replaces."""
    if not isinstance(partial, dict):
        raise TypeError(f"reducer 'merge' needs dict results, got {type(partial).__name__}")
    for key, value in partial.items():
        old = acc.get(key)
        acc[key] = old + value if _is_number(old) and _is_number(value) else value
    return acc


def _pick(numpy_fn, python_fn):
    def pick(a, b):
        if isinstance(a, (int, str, bytes, tuple)) and isinstance(b, type(a)) \
                and not isinstance(a, bool):
            return python_fn(a, b)  # exact for big ints, and defined for str/tuple
        return numpy_fn(a, b)
    return pick


def _nothing(acc, partial):
    return None


BUILTIN = {
    "sum": Reducer("sum", operator.add, empty=lambda: 0),
    "concat": Reducer("concat", _append, start=list, finish=join, empty=list),
    "merge": Reducer("merge", merge_into, start=dict, empty=dict),
    "min": Reducer("min", _pick(np.minimum, min)),
    "max": Reducer("max", _pick(np.maximum, max)),
    "none": Reducer("none", _nothing, start=lambda: None, empty=lambda: None),
}


def resolve(spec: str) -> Reducer:
    if spec in BUILTIN:
        return BUILTIN[spec]
    from ._functions import load
    if ":" not in spec:
        raise UsageError(f"--reduce {spec}: unknown reducer; use one of "
                         f"{', '.join(BUILTIN)} or module:function")
    return Reducer(spec, load(spec, "--reduce"))
