"""Question: on this one machine, what does running a map-reduce on Dask (a LocalCluster
sized to the machine) cost against the fork backend, and is there a job where Dask wins?

Three jobs, each the same `batch.map_reduce` call on both backends, same chunks, same
fold, results checked equal:
- `array`: sum(sqrt(chunk)) over a float64 array built in this process (512 MiB; 64 MiB
  with --quick). Fork workers read it through copy-on-write; Dask scatters every chunk
  to a worker process over a socket: moving the input is the cost.
- `npy`: the same sum over the same numbers saved as .npy and memory-mapped. Dask workers
  map their own rows of the file (nothing crosses the socket but the path), as fork
  workers map the parent's pages.
- `python`: a pure-Python loop per chunk (64 chunks of about 20 ms): CPU-bound work where
  moving data costs nothing and only per-chunk overhead differs.
- `warm`: 32 light chunks of a function that loads something (a model, a table: 1 s
  here) on first use in each process, called again and again on one Pool. Fork workers
  live for one call, so every call loads it again; a Dask worker keeps it for the Pool's
  life. (The fork way is to load it in the parent before the calls: the workers then
  share it, and fork wins again.)
The Dask cluster is started once and timed on its own: it is a one-off cost per Pool (or
per call, with the module-level helpers and no client). Fork runs all come first, before
Dask starts threads in this process (forking beside them is unsafe).

    python -m benchmarks.bench_dask [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import math
import operator
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import batch
from batch._bench import _machine

CHUNK_BYTES = 8 << 20       # 8 MiB chunks: big enough that per-chunk costs are small
PY_CHUNKS = 64              # python job: chunks, each ...
PY_LOOP = 400_000           # ... this many loop iterations (about 20 ms here)
WARM_CHUNKS = 32
LOAD_SECONDS = 1.0          # warm job: what the first call in a process pays
_LOADED: dict = {}


def root_sum(chunk) -> float:
    return float(np.sqrt(chunk).sum())


def python_work(chunk) -> int:
    total = 0
    for _ in chunk:
        for i in range(PY_LOOP):
            total += i & 7
    return total


def warm_work(chunk) -> int:
    if "table" not in _LOADED:   # once per process
        time.sleep(LOAD_SECONDS)
        _LOADED["table"] = np.arange(1000)
    return int(_LOADED["table"][:len(chunk)].sum())


def _by_name(fn):
    """`fn` from this module imported by its name, as Dask workers import it: a function
    of __main__ is pickled by value, with a fresh, empty _LOADED each time."""
    if not __spec__ or __spec__.name == "__main__":
        return fn
    import importlib
    return getattr(importlib.import_module(__spec__.name), fn.__name__)


def jobs(size: int, folder: str):
    data = np.random.default_rng(0).random(size // 8)
    path = os.path.join(folder, "numbers.npy")
    np.save(path, data)
    chunks = max(1, size // CHUNK_BYTES)
    return {
        "array": (root_sum, data, chunks),
        "npy": (root_sum, np.load(path, mmap_mode="r"), chunks),
        "python": (python_work, np.zeros(PY_CHUNKS), PY_CHUNKS),
        "warm": (_by_name(warm_work), np.zeros(WARM_CHUNKS), WARM_CHUNKS),
    }


def timed(pool, repeat: int, job):
    """Seconds of each of `repeat` calls of `job` on `pool`, and the last call's result."""
    mapper, data, chunks = job
    seconds, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = pool.map_reduce(mapper, operator.add, data, chunks=chunks)
        seconds.append(time.perf_counter() - t0)
    return seconds, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB instead of 512 MiB")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        import distributed
    except ImportError:
        print("Dask is not installed: pip install 'batch[dask]'", file=sys.stderr)
        return 2
    workers = batch.usable_cpus()
    size = (64 if args.quick else 512) << 20
    print("machine:", _machine.summary(_machine.describe()))
    print(f"dask {distributed.__version__}; {workers} workers; {size >> 20} MiB of float64; "
          f"median of {args.repeat} runs (min-max)\n")
    with tempfile.TemporaryDirectory() as folder:
        work = jobs(size, folder)
        with batch.Pool(workers, backend="fork") as pool:
            fork = {name: timed(pool, args.repeat, job) for name, job in work.items()}
        t0 = time.perf_counter()
        with batch.Pool(workers, backend="dask") as pool:
            pool.map(abs, [0])  # starts the LocalCluster
            started = time.perf_counter() - t0
            dask = {name: timed(pool, args.repeat, job) for name, job in work.items()}
    print(f"LocalCluster start ({workers} worker processes): {started:.2f} s, once per Pool\n")
    # Two ratios: of the medians, and of the fastest runs, which a busy machine disturbs less.
    print(f"{'job':8} {'fork s':>22} {'dask s':>22} {'dask/fork':>10} {'(fastest)':>10}")
    for name in work:
        (f_s, f_res), (d_s, d_res) = fork[name], dask[name]
        assert math.isclose(f_res, d_res, rel_tol=1e-12), (name, f_res, d_res)
        ratio = statistics.median(d_s) / statistics.median(f_s)
        print(f"{name:8} {_span(f_s):>22} {_span(d_s):>22} {ratio:>9.2f}x "
              f"{min(d_s) / min(f_s):>9.2f}x")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


def _span(seconds) -> str:
    return f"{statistics.median(seconds):.3f} ({min(seconds):.3f}-{max(seconds):.3f})"


if __name__ == "__main__":
    sys.exit(main())
