"""batch: parallel map and map-reduce on every core, by forking.

    import batch
    squares = batch.pmap(lambda x: x * x, range(1000))
    total = batch.map_reduce(np.sum, operator.add, big_array)

Workers are forked after the input exists, read it through copy-on-write memory (it is
never serialized) and send results back over pipes. See batch/_coordinator.py for the
data flow, batch/_errors.py for what a failure raises.
"""

from __future__ import annotations

from ._combine import NOTHING as _NOTHING
from ._errors import (BatchError, JobFailed, ResultError, TaskTimeout, WorkerCrashed,
                      WorkerError, WorkerStartError)
from ._cpus import usable_cpus

# Pool and Executor load on first use (PEP 562), with the fork backend, msgpack and
# numpy behind them: 0.2 s of `python -m batch exec`'s 0.35 s start-up here (measured
# with `python -X importtime -m batch exec --help`), which runs no Python worker at all.
# A program that maps pays the same total, at its first Pool instead of at the import.
_LAZY = {"Executor": "._executor", "Pool": "._pool"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batch' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__version__ = "0.1.0"

__all__ = [
    "BatchError",
    "Executor",
    "JobFailed",
    "Pool",
    "ResultError",
    "TaskTimeout",
    "WorkerCrashed",
    "WorkerError",
    "WorkerStartError",
    "iexec",
    "imap",
    "map_blocks",
    "map_reduce",
    "pexec",
    "pmap",
    "usable_cpus",
]


def pmap(fn, items, *more, workers=None, chunksize=None, backend=None, ordered=True,
         progress=False, timeout=None, retries=0, initializer=None, initargs=(),
         address=None, client=None):
    """[fn(x) for x in items] on every core; a list in input order (see Pool.map).

    Several iterables: fn(x, y, ...) over them zipped, as map() does.
    address/client: where backend="dask" runs (see Pool); the Pool lives for this call.
    """
    from ._pool import Pool
    with Pool(workers, backend, address=address, client=client) as pool:
        return pool.map(fn, items, *more, chunksize=chunksize, ordered=ordered, progress=progress,
                        timeout=timeout, retries=retries, initializer=initializer,
                        initargs=initargs)


def imap(fn, items, *more, workers=None, chunksize=None, backend=None, ordered=True,
         progress=False, timeout=None, retries=0, initializer=None, initargs=(),
         address=None, client=None):
    """A lazy iterator of fn(x), reading `items` only as workers free up (see Pool.imap).

    Several iterables as for pmap; address/client: as for pmap; the Pool lives until
    the iterator ends or is closed.
    """
    from ._pool import Pool, imap_once as _imap_once
    return _imap_once(Pool(workers, backend, address=address, client=client), fn, items, *more,
                      chunksize=chunksize, ordered=ordered, progress=progress,
                      timeout=timeout, retries=retries, initializer=initializer,
                      initargs=initargs)


def map_reduce(mapper, reducer, data, *, chunks=None, chunksize=None, workers=None,
               backend=None, initial=_NOTHING, progress=False, timeout=None, retries=0,
               initializer=None, initargs=(), address=None, client=None):
    """Fold reducer over mapper(chunk) for chunks of data, in chunk order (see Pool.map_reduce).

    address/client: as for pmap.
    """
    from ._pool import Pool
    with Pool(workers, backend, address=address, client=client) as pool:
        return pool.map_reduce(mapper, reducer, data, chunks=chunks, chunksize=chunksize,
                               initial=initial, progress=progress, timeout=timeout,
                               retries=retries, initializer=initializer, initargs=initargs)


def map_blocks(fn, array, *, out=None, dtype=None, chunks=None, workers=None, backend=None,
               progress=False, timeout=None, retries=0):
    """fn over blocks of `array` along axis 0, written into one output array (see
    Pool.map_blocks): like fn(array) for a function that works row by row, on every core.
    """
    from ._pool import Pool
    with Pool(workers, backend) as pool:
        return pool.map_blocks(fn, array, out=out, dtype=dtype, chunks=chunks,
                               progress=progress, timeout=timeout, retries=retries)


def pexec(command, items, *, workers=None, timeout=None, retries=0, keep_order=True,
          check=True, capture=True, input=None, env=None, cwd=None, progress=False,
          shell=False):
    """Run a program once per item on every core; a list of subprocess.CompletedProcess.

    `command` is an argv with replacement strings ({} {.} {/} {//} {/.} {#} {%} {1}..):
    batch.pexec(["gzip", "-k", "{}"], paths). No shell unless shell=True. See
    batch/_exec/_api.py for every option; a failure raises JobFailed.
    """
    from ._exec import _api
    return _api.pexec(command, items, workers=workers, timeout=timeout, retries=retries,
                      keep_order=keep_order, check=check, capture=capture, input=input,
                      env=env, cwd=cwd, progress=progress, shell=shell)


def iexec(command, items, *, workers=None, timeout=None, retries=0, keep_order=True,
          check=True, capture=True, input=None, env=None, cwd=None, progress=False,
          shell=False):
    """The lazy form of pexec: CompletedProcess objects as jobs finish (in item order
    with keep_order=True), reading `items` only as slots free up."""
    from ._exec import _api
    return _api.iexec(command, items, workers=workers, timeout=timeout, retries=retries,
                      keep_order=keep_order, check=check, capture=capture, input=input,
                      env=env, cwd=cwd, progress=progress, shell=shell)
