"""The implementations compared: batch's three backends and the well-known pools.

Each peer is used the way its own documentation shows, pool creation included in the
time (a fresh pool per call is what a script does; joblib keeps its executor between
calls, as its docs intend, so only its first repetition pays the start):

    mp_pool    multiprocessing.get_context("fork").Pool(n): pool.map(fn, items)
    ppe        concurrent.futures.ProcessPoolExecutor(n): ex.map(fn, items)   (chunksize=1)
    ppe_tuned  the same with chunksize = len(items) / (4 n), multiprocessing.Pool's rule
    joblib     Parallel(n_jobs=n)(delayed(fn)(x) for x in items): batch_size="auto", and
               arrays over 1 MB memory-mapped through a file in /dev/shm
    mpire      WorkerPool(n_jobs=n, start_method="fork"): pool.map(fn, items); a big
               input goes in as `shared_objects`, which fork shares copy-on-write; and
               concatenate_numpy_output=False, so that a list of arrays stays a list
    executor   batch.Executor(n): ex.map(fn, items, chunksize=) with ppe_tuned's chunksize
    executor_submit, ppe_submit
               batch.Executor(n) / ProcessPoolExecutor(n): [ex.submit(fn, x) for x in
               items], then every result: the loop code written for concurrent.futures has

The exec workloads' implementations are programs (batch exec, xargs, GNU parallel, wc),
run as command lines by _exec.py; each is "installed" when the program is there.

For map_reduce every implementation maps the same function over the same spans of the
array (batch's own split): the peers receive each chunk as an argument, which is where
they pickle or copy it, except mpire, whose docs pass a big input as a shared object.
Peers are imported only inside the benchmarked process that uses them.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
from typing import Callable

from .._split import CHUNKS_PER_WORKER, ranges
from . import _exec


@dataclasses.dataclass(frozen=True)
class Implementation:
    key: str
    label: str
    module: str | None        # what must be importable; None: always there
    make: Callable            # make(workers) -> (map(fn, items), map_reduce(fn, red, data, spans))
    close: Callable = lambda: None   # after the last call: stop what the pool keeps alive
    available: Callable | None = None   # a program, not a module: is it there?
    missing: str | None = None          # the note when it is not

    def installed(self) -> bool:
        if self.available is not None:
            return self.available()
        return self.module is None or importlib.util.find_spec(self.module) is not None


def _batch(backend):
    def make(workers):
        import batch
        batch.Pool  # noqa: B018 -- loaded on first use since `import batch` went lazy:
        # before the clock, as every peer's imports are

        def map_(fn, items):
            return batch.pmap(fn, items, workers=workers, backend=backend)

        def map_reduce(fn, reducer, data, spans):
            return batch.map_reduce(fn, reducer, data, chunks=len(spans), workers=workers,
                                    backend=backend)
        return map_, map_reduce
    return make


def _mp_pool(workers):
    import multiprocessing
    ctx = multiprocessing.get_context("fork")

    def map_(fn, items):
        with ctx.Pool(workers) as pool:
            return pool.map(fn, items)

    def map_reduce(fn, reducer, data, spans):
        with ctx.Pool(workers) as pool:
            return functools.reduce(reducer, pool.map(fn, [data[a:b] for a, b in spans]))
    return map_, map_reduce


def _ppe(tuned):
    def make(workers):
        from concurrent.futures import ProcessPoolExecutor

        def chunksize(n):
            return max(1, math.ceil(n / (CHUNKS_PER_WORKER * workers))) if tuned else 1

        def map_(fn, items):
            with ProcessPoolExecutor(max_workers=workers) as ex:
                return list(ex.map(fn, items, chunksize=chunksize(len(items))))

        def map_reduce(fn, reducer, data, spans):
            with ProcessPoolExecutor(max_workers=workers) as ex:
                return functools.reduce(reducer, ex.map(fn, [data[a:b] for a, b in spans],
                                                        chunksize=chunksize(len(spans))))
        return map_, map_reduce
    return make


_joblib_used = False


def _joblib(workers):
    from joblib import Parallel, delayed

    def map_(fn, items):
        global _joblib_used
        _joblib_used = True
        return Parallel(n_jobs=workers)(delayed(fn)(x) for x in items)

    def map_reduce(fn, reducer, data, spans):
        global _joblib_used
        _joblib_used = True
        parts = Parallel(n_jobs=workers)(delayed(fn)(data[a:b]) for a, b in spans)
        return functools.reduce(reducer, parts)
    return map_, map_reduce


def _joblib_close():
    # joblib keeps its executor (and its worker processes) for the next call; a process
    # that exits without this leaves them running until loky's idle timeout (300 s).
    if _joblib_used:
        from joblib.externals.loky import get_reusable_executor
        get_reusable_executor().shutdown(wait=True)


def _on_slice(fn, shared, start, stop):
    return fn(shared[start:stop])


def _mpire(workers):
    from mpire import WorkerPool

    def map_(fn, items):
        with WorkerPool(n_jobs=workers, start_method="fork") as pool:
            return pool.map(fn, items, concatenate_numpy_output=False)

    def map_reduce(fn, reducer, data, spans):
        with WorkerPool(n_jobs=workers, shared_objects=data, start_method="fork") as pool:
            return functools.reduce(reducer, pool.map(functools.partial(_on_slice, fn), spans))
    return map_, map_reduce


def _tuned_chunksize(n: int, workers: int) -> int:
    return max(1, math.ceil(n / (CHUNKS_PER_WORKER * workers)))


def _executor(workers):
    import batch

    def map_(fn, items):
        with batch.Executor(workers) as ex:
            return list(ex.map(fn, items, chunksize=_tuned_chunksize(len(items), workers)))

    def map_reduce(fn, reducer, data, spans):
        with batch.Executor(workers) as ex:
            return functools.reduce(reducer, ex.map(fn, [data[a:b] for a, b in spans]))
    return map_, map_reduce


def _submit_loop(executor):
    def make(workers):
        def map_(fn, items):
            with executor()(workers) as ex:
                futures = [ex.submit(fn, x) for x in items]
                return [f.result() for f in futures]

        def map_reduce(fn, reducer, data, spans):
            with executor()(workers) as ex:
                futures = [ex.submit(fn, data[a:b]) for a, b in spans]
                return functools.reduce(reducer, (f.result() for f in futures))
        return map_, map_reduce
    return make


def _batch_executor():
    import batch
    return batch.Executor


def _process_pool_executor():
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor


def _raw(workers):
    def unsupported(*args):
        raise TypeError("'raw' and the programs run only measurements of shape 'call' "
                        "or 'exec'")
    return unsupported, unsupported


IMPLEMENTATIONS = {i.key: i for i in [
    Implementation("fork", "batch fork", None, _batch("fork")),
    Implementation("thread", "batch thread", None, _batch("thread")),
    Implementation("serial", "batch serial", None, _batch("serial")),
    Implementation("mp_pool", "multiprocessing.Pool", None, _mp_pool),
    Implementation("ppe", "ProcessPoolExecutor", None, _ppe(tuned=False)),
    Implementation("ppe_tuned", "ProcessPoolExecutor tuned", None, _ppe(tuned=True)),
    Implementation("joblib", "joblib", "joblib", _joblib, _joblib_close),
    Implementation("mpire", "mpire", "mpire", _mpire),
    Implementation("executor", "batch.Executor.map", None, _executor),
    Implementation("executor_submit", "batch.Executor.submit loop", None,
                   _submit_loop(_batch_executor)),
    Implementation("ppe_submit", "ProcessPoolExecutor.submit loop", None,
                   _submit_loop(_process_pool_executor)),
    Implementation("raw", "os.pipe", None, _raw),
    # Programs, for the exec workloads (batch/_bench/_exec.py): each runs a command line.
    Implementation("exec", "batch exec", None, _raw, available=_exec.batch_exec_available,
                   missing=_exec.EXEC_MISSING),
    Implementation("xargs", "xargs -P", None, _raw,
                   available=functools.partial(_exec.on_path, "xargs"),
                   missing="not installed (apt-get install findutils)"),
    Implementation("parallel", "GNU parallel", None, _raw,
                   available=functools.partial(_exec.on_path, "parallel"),
                   missing="not installed (apt-get install parallel)"),
    Implementation("wc", "wc -l alone", None, _raw,
                   available=functools.partial(_exec.on_path, "wc"),
                   missing="not installed (apt-get install coreutils)"),
    # exec_pipe's other rows (_exec.FILE_STDIN: the text file as stdin, not through cat).
    Implementation("exec_32M", "batch exec --block 32M", None, _raw,
                   available=_exec.batch_exec_available, missing=_exec.EXEC_MISSING),
    Implementation("exec_rr", "batch exec --round-robin", None, _raw,
                   available=_exec.batch_exec_available, missing=_exec.EXEC_MISSING),
    Implementation("wc_file", "wc -l < file", None, _raw,
                   available=functools.partial(_exec.on_path, "wc"),
                   missing="not installed (apt-get install coreutils)"),
    Implementation("exec_file", "batch exec < file", None, _raw,
                   available=_exec.batch_exec_available, missing=_exec.EXEC_MISSING),
    Implementation("exec_file_32M", "batch exec --block 32M < file", None, _raw,
                   available=_exec.batch_exec_available, missing=_exec.EXEC_MISSING),
    Implementation("exec_file_rr", "batch exec --round-robin < file", None, _raw,
                   available=_exec.batch_exec_available, missing=_exec.EXEC_MISSING),
]}

# The implementations that run in one process, whatever the worker count.
SINGLE = ("serial", "raw", "wc", "wc_file")

PARALLEL = ("fork", "thread", "mp_pool", "ppe", "ppe_tuned", "joblib", "mpire")
DEFAULT = ("serial",) + PARALLEL


def _blocks(key: str, job, workers: int, map_) -> Callable[[], object]:
    """fn(data) as one array: batch.map_blocks, fn(data) itself for serial, and for the
    peers a map over batch's own blocks, concatenated (what their docs offer)."""
    import numpy as np

    import batch
    from .._blocks import BLOCK_BYTES
    if key == "serial":
        return functools.partial(job.fn, job.data)
    if key in ("fork", "thread"):
        return functools.partial(batch.map_blocks, job.fn, job.data, workers=workers,
                                 backend=key)
    parts = max(CHUNKS_PER_WORKER * workers, math.ceil(job.data.nbytes / BLOCK_BYTES))
    spans = ranges(len(job.data), parts)
    return lambda: np.concatenate(map_(job.fn, [job.data[a:b] for a, b in spans]))


def runner(key: str, job, workers: int) -> Callable[[], object]:
    """A no-argument callable that runs `job` once on implementation `key`."""
    if job.shape == "exec":
        return _exec.runner(key, job, workers)
    map_, map_reduce = IMPLEMENTATIONS[key].make(workers)
    if job.shape == "blocks":
        return _blocks(key, job, workers, map_)
    if job.shape == "map":
        return functools.partial(map_, job.fn, job.data)
    if job.shape == "map_reduce":
        spans = ranges(len(job.data), CHUNKS_PER_WORKER * workers)
        return functools.partial(map_reduce, job.fn, job.reducer, job.data, spans)
    if key != "raw":
        raise TypeError(f"{key!r} cannot run a raw measurement (shape 'call')")
    return job.fn
