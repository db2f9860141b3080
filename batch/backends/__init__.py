"""Backends: the same run on forked processes, threads, one after another, or Dask.

The coordinator asks `create()` for one by name; this is the only place that knows the
names, and the only place the optional Dask backend will be imported from.
"""

from __future__ import annotations

from .. import _platform

# "dask" is always a valid name: only creating it imports Dask (or says how to install it).
NAMES = ("fork", "thread", "serial", "dask")



def load_default() -> None:
    """Load the default backend, used by every call, with the Pool (batch/_pool.py calls
    this at its import): loading it (msgpack, the wire format, the worker) and finding
    the BLAS libraries took 12 ms out of a first pmap's 15 ms, which then cost three
    times a later one. thread, serial and dask stay lazy. Not at this package's import:
    the CLI needs NAMES, and `batch exec` none of the rest (numpy alone is 40-120 ms).
    """
    if _platform.HAS_FORK:
        from . import fork  # noqa: F401
        _platform.prepare_fork()


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
    """A new backend for one run. `options` are backend-specific (Dask: address, client;
    from a Pool also cluster and retries, see backends/dask.py)."""
    if name == "dask":
        from .dask import DaskBackend  # the first import of Dask; DaskMissing without it
        return DaskBackend(workers=workers, initializer=initializer, initargs=initargs,
                           **options)
    if options:
        raise TypeError(f"backend {name!r} takes no option(s) {', '.join(sorted(options))}")
    if name == "fork":
        from .fork import ForkBackend as cls
    elif name == "thread":
        from .thread import ThreadBackend as cls
    else:
        from .serial import SerialBackend as cls
    return cls(workers=workers, initializer=initializer, initargs=initargs)


def cluster(name: str, *, workers=None, address=None, client=None):
    """What a Pool keeps between runs for backend `name`: Dask's Cluster, else None."""
    if name != "dask":
        given = [k for k, v in (("address", address), ("client", client)) if v is not None]
        if given:
            raise TypeError(f"backend {name!r} takes no option(s) {', '.join(given)}")
        return None
    from ._dask_cluster import Cluster
    return Cluster(address=address, client=client, workers=workers)
