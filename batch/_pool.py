"""Pool: a backend, a worker count and default options; the module-level helpers are
one-liners over it.

A Pool holds no processes between calls: every call forks the workers it needs (see
backends/fork.py for why), so a failed call cannot leave a broken pool behind, and
`close()` only has `submit` work to finish. (A Dask Pool keeps its connection to the
cluster, and a LocalCluster it started, until close().)
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from typing import Any, Callable, Iterable, Iterator

from . import _coordinator, _cpus, _platform, _progress, _split, backends
from ._combine import NOTHING, fold, in_order

backends.load_default()

_OPTIONS = {
    "chunksize": None,
    "ordered": True,
    "progress": False,
    "timeout": None,
    "retries": 0,
    "initializer": None,
    "initargs": (),
}

# An in-order consumer holds the results that finished ahead of a slow chunk; chunks
# more than this many per worker ahead of it wait, which bounds that memory.
WINDOW_PER_WORKER = 8


class Pool:
    """Run maps and map-reduces on `workers` workers of one backend.

    `workers=None` means the CPUs this process may use; `backend` is "fork" (the default
    where fork exists), "thread", "serial" or "dask". Keyword defaults (chunksize, ordered,
    progress, timeout, retries, initializer, initargs) apply to every call and can be
    overridden per call.

    Dask only: `address="tcp://host:8786"` (a running scheduler) or `client=` (a
    distributed.Client), where `workers=None` means the cluster's worker threads; with
    neither, a LocalCluster of `workers` processes is started on first use and shut down
    by close().
    """

    def __init__(self, workers: int | None = None, backend: str | None = None, *,
                 address: str | None = None, client=None, **defaults):
        workers = _split.positive("workers", workers)
        self._defaults = _options(defaults, dict(_OPTIONS))
        # backend=None is decided again for every call, which may set its own timeout
        # and may come after an import that turned a free-threaded build's GIL back on.
        self._auto = backend is None
        self.backend = backends.resolve(backend, timeout=self._defaults["timeout"])
        # --- Dask: where runs go, kept for the Pool's lifetime (backends/_dask_cluster.py)
        self._cluster = backends.cluster(self.backend, workers=workers, address=address,
                                         client=client)
        threads = self._cluster.threads() if self._cluster is not None else None
        self.workers = workers or threads or _cpus.usable_cpus()
        # ---
        self._submitter = None
        self._submit_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"<batch.Pool workers={self.workers} backend={self.backend!r}>"

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(cancel=exc_type is not None)

    # --- the three calls --------------------------------------------------------------

    def map(self, fn: Callable, items: Iterable, *more: Iterable, **options) -> list:
        """[fn(x) for x in items], computed in parallel; input order unless ordered=False.

        With several iterables, fn(x, y, ...) over them zipped, as map() does.
        """
        opts = self._options(options)
        _callables(fn=fn)
        body, items = _mapper(fn, items, more)
        source = _split.plan(items, body, workers=self.workers,
                             chunksize=opts["chunksize"], probe=True)
        chunks: dict[int, list] = {}
        results: list = []
        private: list = []  # no user code sees the results before the run ends
        try:
            with contextlib.closing(self._outcomes(source, opts, hold=private)) as outcomes:
                for out in outcomes:
                    if opts["ordered"]:
                        chunks[out.task.index] = out.result
                    else:
                        results.extend(out.result)
        finally:
            _platform.inheritable(private)
        if opts["ordered"]:
            for index in sorted(chunks):
                results.extend(chunks.pop(index))
        return results

    def imap(self, fn: Callable, items: Iterable, *more: Iterable, **options) -> Iterator:
        """Like map, as a lazy iterator that reads `items` only as workers free up.

        ordered=False yields results in completion order. Closing the iterator (or
        dropping it) stops the workers still running.
        """
        opts = self._options(options)
        _callables(fn=fn)
        body, items = _mapper(fn, items, more)
        source = _split.plan(items, body, workers=self.workers,
                             chunksize=opts["chunksize"], probe=True)
        if not opts["ordered"]:
            return _imap_unordered(self._outcomes(source, opts))
        window = WINDOW_PER_WORKER * self.workers
        return _imap_ordered(self._outcomes(source, opts, window, raise_errors=False), source)

    def map_reduce(self, mapper: Callable, reducer: Callable, data, *, chunks: int | None = None,
                   initial: Any = NOTHING, **options):
        """reducer(...reducer(initial, mapper(chunk0)), ..., mapper(chunkN)).

        A numpy array is cut along axis 0 into contiguous views; any other sequence into
        slices, an iterable into lists. Partials are folded in chunk order as they
        arrive, so the list of all partials is never held.
        """
        opts = self._options(options)
        _callables(mapper=mapper, reducer=reducer)
        source = _split.plan(data, mapper, workers=self.workers,
                             chunks=_split.positive("chunks", chunks),
                             chunksize=opts["chunksize"])
        window = WINDOW_PER_WORKER * self.workers
        with contextlib.closing(self._outcomes(source, opts, window)) as outcomes:
            return fold(reducer, in_order((o.task.index, o.result) for o in outcomes), initial)

    def map_blocks(self, fn: Callable, array, *, out=None, dtype=None,
                   chunks: int | None = None, **options):
        """fn(block) for blocks of `array` along axis 0, each result written into its
        slice of one output array, which is returned (`out`, when given). See _blocks.py.

        fn must return as many rows as it gets; the output's dtype and trailing shape
        come from `out`, or from fn on the first row (`dtype=` overrides the dtype).
        """
        from . import _blocks
        opts = self._options(options)
        _callables(fn=fn)
        return _blocks.run(self, fn, array, out=out, dtype=dtype,
                           chunks=_split.positive("chunks", chunks), options=opts)

    def submit(self, fn: Callable, /, *args, **kwargs):
        """Run fn(*args, **kwargs) on a worker; a concurrent.futures.Future of its result.

        At most `workers` submitted calls run at once: past that, submit waits for one to
        finish rather than starting an unbounded number of processes.
        """
        self._check_open()
        with self._submit_lock:  # two threads' first submits must not make two executors
            if self._submitter is None and self._cluster is not None:  # Dask: its own futures
                self._submitter = self._cluster.submitter(self._defaults)
            if self._submitter is None:
                from ._submit import submitter
                self._submitter = submitter(self.backend, self.workers, self._defaults)
        return self._submitter.submit(fn, args, kwargs)

    def close(self, *, cancel: bool = False) -> None:
        """Wait for submitted calls (or, with cancel=True, stop them); then refuse new work."""
        self._closed = True
        try:
            if self._submitter is not None:
                submitter, self._submitter = self._submitter, None
                submitter.close(cancel=cancel)
        finally:
            if self._cluster is not None:  # Dask: shuts down only a cluster it started
                self._cluster.close()

    # --- plumbing ---------------------------------------------------------------------

    def _backend_name(self, timeout=None) -> str:
        # Inside a forked worker a nested map runs serially instead of forking again.
        if _platform.IN_WORKER:
            return "serial"
        return backends.resolve(None, timeout=timeout) if self._auto else self.backend

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this batch.Pool is closed")

    def _options(self, overrides: dict) -> dict:
        self._check_open()
        return _options(overrides, dict(self._defaults))

    def _outcomes(self, source, opts, window=None, raise_errors=True, hold=None):
        """Outcomes of a run; the first failure is raised here (after retries), or passed
        on when `raise_errors` is false.

        Results reach the caller with their receive buffers visible to later forks again,
        unless `hold` is a list: then the buffers go there, and the caller releases them
        (with _platform.inheritable) before user code can see the results.
        """
        name = self._backend_name(opts["timeout"])
        # Dask: this Pool's cluster, and `retries` for Dask's own (backends/dask.py)
        extra = {"cluster": self._cluster, "retries": opts["retries"]} if name == "dask" else {}
        backend = backends.create(name, workers=self.workers, initializer=opts["initializer"],
                                  initargs=opts["initargs"], **extra)
        bar = _progress.bar(opts["progress"], source.total)
        outcomes = _coordinator.run(backend, source, workers=self.workers,
                                    timeout=opts["timeout"], retries=opts["retries"],
                                    window=window)
        try:
            for out in outcomes:
                if out.error is not None:
                    if raise_errors:
                        raise out.error
                    yield out
                    continue
                if hold is None:
                    _platform.inheritable(out.private)
                else:
                    hold.extend(out.private)
                source.feedback(out.task.count, out.compute)
                bar.update(out.task.count)
                yield out
        finally:
            outcomes.close()
            backend.close()  # also when the run never started; closing twice is harmless
            bar.close()


def imap_once(pool: Pool, fn: Callable, items: Iterable, *more, **options) -> Iterator:
    """pool.imap(...) that closes `pool` when it ends or is dropped: the imap helper's
    pool lives as long as its iterator (for Dask, a LocalCluster it started)."""
    try:
        results = pool.imap(fn, items, *more, **options)
    except BaseException:
        pool.close()
        raise
    return _closing(pool, results)


def _closing(pool: Pool, results: Iterator) -> Iterator:
    with pool, contextlib.closing(results):
        yield from results


def _imap_unordered(outcomes):
    with contextlib.closing(outcomes):
        for out in outcomes:
            yield from out.result


def _imap_ordered(outcomes, source):
    """Results in input order; a failure surfaces where a plain loop would raise it.

    Every item before the failed chunk is still delivered (their chunks are already
    running or queued); no chunk after it is started.
    """
    failure = None
    with contextlib.closing(outcomes):
        held: dict[int, list] = {}
        expected = 0
        for out in outcomes:
            if out.error is not None:
                if failure is None or out.task.index < failure.chunk:
                    failure = out.error
                    source.stop_after(out.task.index)
            else:
                held[out.task.index] = out.result
            while expected in held:
                yield from held.pop(expected)
                expected += 1
            if failure is not None and expected == failure.chunk:
                raise failure


def _callables(**named) -> None:
    """A TypeError now, in the caller, rather than one WorkerError per chunk after the
    workers were forked (`pmap(3, items)`)."""
    for name, value in named.items():
        if not callable(value):
            raise TypeError(f"{name} must be callable, got {type(value).__name__}")


def _mapper(fn, items, more):
    """The chunk body and the input of a map over `items` and, zipped with it, `more`."""
    if not more:
        return (lambda chunk: list(map(fn, chunk))), items
    return (lambda chunk: list(itertools.starmap(fn, chunk))), _split.zipped((items, *more))


def _options(given: dict, base: dict) -> dict:
    unknown = set(given) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    base.update(given)
    _split.positive("chunksize", base["chunksize"])
    if base["timeout"] is not None and not base["timeout"] > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {base['timeout']}")
    if isinstance(base["retries"], bool) or not isinstance(base["retries"], int) \
            or base["retries"] < 0:
        raise ValueError(f"retries must be an int of at least 0, got {base['retries']!r}")
    if base["initializer"] is not None and not callable(base["initializer"]):
        raise TypeError("initializer must be callable")
    base["initargs"] = tuple(base["initargs"])
    return base
