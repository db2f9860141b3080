"""--map and --reduce to a (Mapper, Reducer) pair for one input kind.

A built-in mapper brings its own reducer; a user's function is called on each chunk of
an array (numpy functions take arrays) and on each item of lines or files (as GNU
parallel runs a command per item), with `concat` as the default reducer.
"""

from __future__ import annotations

from .._exits import UsageError
from . import _builtins, _functions, _reducers
from ._model import ItemError, Mapper

# What `batch run INPUT` computes when --map is not given.
DEFAULT_MAP = {"array": "stats", "lines": "lines", "files": "size"}


def sample_kind(spec: str | None) -> str:
    """The kind of sample data to run on when no INPUT is given."""
    return _builtins.sample_kind(spec) if spec in _builtins.NAMES else "array"


def build(args, kind: str, runs_dir=None) -> tuple[Mapper, object]:
    spec = args.map or DEFAULT_MAP[kind]
    reducer = _reducers.resolve(args.reduce) if args.reduce else None
    if spec in _builtins.NAMES:
        mapper = _builtins.make(spec, kind, args, natural=reducer is None, runs_dir=runs_dir)
        return mapper, reducer or mapper.natural
    if ":" not in spec:
        raise UsageError(f"--map {spec}: unknown mapper; built-ins: "
                         f"{', '.join(_builtins.NAMES)}; or module:function, file.py:function")
    fn = _functions.load(spec, "--map")
    reducer = reducer or _reducers.BUILTIN["concat"]
    if kind == "array":
        return Mapper(spec, fn, reducer), reducer
    return Mapper(spec, _per_item(fn, reducer), reducer), reducer


def _per_item(fn, reducer):
    def body(items):
        return reducer.collect(_each(fn, items))
    return body


def _each(fn, items):
    for i, item in enumerate(items):
        try:
            value = fn(item)
        except Exception as exc:
            raise ItemError(i, item, f"{type(exc).__name__}: {exc}") from exc
        yield value
