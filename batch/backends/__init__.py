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


def default(*, timeout: float | None = None) -> tuple[str, str]:
    """The backend `backend=None` means for a call here, and why (batch info prints it).

    Asked for every call (Pool: every map, imap, map_reduce), because the answer can
    change while a program runs: see "the GIL turned back on" below.

    - No fork on this platform: thread.
    - A build with the GIL: fork. One thread at a time runs Python, so threads gain
      nothing on pure-Python work, where forked workers use every core, and fork's
      copy-on-write input costs no memory.
    - A free-threaded build (python3.13t, 3.14t; PEP 703) with the GIL off: thread. In
      one `batch bench --python` run side by side (benchmarks/README.md, "Free
      threading", 3.13.15t, 2 cores under other load) threads beat fork on every
      workload: pure Python 0.62 s against 0.70, numpy 0.095 against 0.198, a 128 MiB
      input 0.066 against 0.085, 50,000 tiny items 0.016 against 0.057, 8 results of
      16 MiB 0.093 against 0.68, a 2-item call 22 ms against 35; with the same or less
      peak memory. Threads pay no fork, no copy-on-write faults and no encoding of
      results; and on this build fork pays more than with the GIL, as freezing the heap
      for the collector walks every object (backends/_forking.py).
    - ...unless the GIL is on again: importing an extension module that does not
      declare itself safe without the GIL turns the GIL back on for the whole process
      (CPython warns when it does). Threads then gain nothing again, and such a module
      is exactly the thread-unsafe C code a forked worker keeps to itself: fork.
    - ...or a timeout is set: a thread cannot be stopped from outside, so a chunk past
      its timeout would run on to the end (backends/thread.py); a forked worker is
      killed. Correctness over speed: fork.

    Tried and left: choosing by the call's input (its size, numpy or not, item count).
    On the free-threaded build no workload was measured where fork won, so a rule on
    the shape would never change the answer; the timeout is the one part of a call's
    shape that does.
    """
    if not _platform.HAS_FORK:
        return "thread", "this platform has no fork"
    if not _platform.FREE_THREADED_BUILD:
        return "fork", ("the GIL runs one thread at a time: processes use every core "
                        "for Python code")
    if _platform.gil_enabled():
        return "fork", ("free-threaded build, but an imported extension module turned "
                        "the GIL back on")
    if timeout is not None:
        return "fork", "a timeout is set, and only a process can be stopped"
    return "thread", ("free-threaded build with the GIL off: threads run Python on every "
                      "core, with no fork and no result to encode")


def resolve(name: str | None, *, timeout: float | None = None) -> str:
    """The backend a run will use: default() for None, else the one asked for, checked."""
    if name is None:
        return default(timeout=timeout)[0]
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
