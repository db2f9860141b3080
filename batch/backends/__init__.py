"""Backends: the same run on forked processes, threads, or one after another.

The coordinator asks `create()` for one by name; this is the only place that knows the
names, and the only place the optional Dask backend will be imported from.
"""

from __future__ import annotations

from .. import _platform

NAMES = ("fork", "thread", "serial")


def resolve(name: str | None) -> str:
    """The backend a run will use: the default, or the one asked for, checked."""
    if name is None:
        return _platform.default_backend()
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}")
    if name == "fork" and not _platform.HAS_FORK:
        raise ValueError("backend 'fork' needs os.fork, which this platform lacks; "
                         "use backend='thread'")
    return name


def create(name: str, *, workers: int, initializer=None, initargs=(), **options):
    """A new backend for one run. `options` are backend-specific (Dask: address, client)."""
    if options:
        raise TypeError(f"backend {name!r} takes no option(s) {', '.join(sorted(options))}")
    if name == "fork":
        from .fork import ForkBackend as cls
    elif name == "thread":
        from .thread import ThreadBackend as cls
    else:
        from .serial import SerialBackend as cls
    return cls(workers=workers, initializer=initializer, initargs=initargs)
