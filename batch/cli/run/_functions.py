"""`module:function` and `path/to/file.py:function`, imported in the coordinator.

The import happens once, before any worker starts, so that forked workers inherit the
loaded module and a function that does not exist is a usage error (exit 2) instead of a
failure in every chunk. The current folder is put on sys.path as `python -m` would: the
`batch` console script otherwise could not import a module sitting next to the user.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from .._exits import UsageError


def load(spec: str, option: str):
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise UsageError(f"{option} {spec}: expected module:function or file.py:function")
    if where.endswith(".py") or os.sep in where:
        module = _from_file(where, spec, option)
    else:
        module = _from_module(where, spec, option)
    obj = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{option} {spec}: {where} has no {name!r}") from None
    if not callable(obj):
        raise UsageError(f"{option} {spec}: {name!r} is not a function but a value of type "
                         f"{type(obj).__name__}")
    return obj


def _from_module(dotted: str, spec: str, option: str):
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        if exc.name and dotted.startswith(exc.name):
            raise UsageError(f"{option} {spec}: no module named {exc.name!r}") from None
        raise UsageError(f"{option} {spec}: importing {dotted} failed: {exc}") from None
    except Exception as exc:  # the module's own code raised while importing
        raise UsageError(f"{option} {spec}: importing {dotted} raised "
                         f"{type(exc).__name__}: {exc}") from None


def _from_file(path: str, spec: str, option: str):
    if not os.path.isfile(path):
        raise UsageError(f"{option} {spec}: {path}: no such file")
    name = "batch_user_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    loader_spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    if loader_spec is None:
        raise UsageError(f"{option} {spec}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # so that pickling a function from it (thread/dask) finds it
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise UsageError(f"{option} {spec}: running {path} raised "
                         f"{type(exc).__name__}: {exc}") from None
    return module
