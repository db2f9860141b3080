"""The workloads: what each one computes, at three sizes, and how its result is checked.

A workload builds a Job inside the benchmarked process, before the clock starts (so a
2 GiB input exists, as it would in a real program, before any pool is made). A Job is
one of three shapes that every implementation knows how to run:

    map         [fn(x) for x in items]                       -> a list
    map_reduce  reduce(reducer, [fn(data[a:b]) for a, b in spans])
    blocks      fn(data) as one array: batch.map_blocks; serial is fn(data) itself, the
                peers concatenate fn over batch's blocks
    call        fn(): a measurement with no implementation (raw pipe bandwidth)
    exec        a command line per implementation, timed to its exit (_exec.py)

Every check compares against a value known in closed form, never against another
implementation's output, so a wrong answer is caught even when everyone agrees on it.
The functions mapped here live at module level so every peer can pickle them by name.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from typing import Any, Callable

import numpy as np

from . import _exec

SIZES = ("tiny", "quick", "full")

# big_input reads its chunk in blocks of this many float64 (4 MiB): a chunk of a 2 GiB
# input is 256 MiB, and np.sqrt over it at once would allocate 256 MiB per worker.
SQRT_BLOCK = 1 << 19

# Zeta(-1/2): the constant of the Euler-Maclaurin expansion of sum(sqrt(i)).
_ZETA_MINUS_HALF = -0.2078862250607980


@dataclasses.dataclass
class Job:
    shape: str                       # "map", "map_reduce", "call" or "exec"
    fn: Callable
    data: Any = None
    reducer: Callable | None = None
    items: int = 0                   # what items/s counts
    input_bytes: int = 0             # the input (and output) held: the memory ratio's base
    result_bytes: int = 0            # bytes of results that cross back (bandwidth)
    check: Callable[[Any], float] = lambda result: 0.0   # raises if wrong; a digest
    keep: Any = None                 # memory the parent holds during the run (startup_big)


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    question: str
    sizes: dict                      # size name -> params for build
    build: Callable[[dict], Job]
    fresh_per_rep: bool = False      # a new process per repetition (cold start)
    env: dict = dataclasses.field(default_factory=dict)
    implementations: tuple | None = None   # None: every implementation
    skip: dict = dataclasses.field(default_factory=dict)   # implementation -> why
    programs: bool = False           # runs programs: their own tree's peak is reported


class WrongResult(AssertionError):
    """An implementation returned something other than the workload's known answer."""


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise WrongResult(what)


# --- gil_bound and scaling: pure Python, holds the GIL --------------------------------

# spin()'s loop length: about 1 ms of bytecode per item, so that a pool's cost per item
# (tens of microseconds) is visible but does not decide the result.
SPIN_ROUNDS = 20000


def spin(x: int) -> int:
    """A pure-Python loop: threads cannot run two of these at once."""
    total = 0
    for i in range(SPIN_ROUNDS):
        total += i * x
    return total


def _gil_bound(p: dict) -> Job:
    n = p["items"]

    def check(result):
        _expect(len(result) == n, f"{len(result)} results for {n} items")
        k = SPIN_ROUNDS * (SPIN_ROUNDS - 1) // 2
        _expect(all(r == k * x for x, r in zip(range(n), result)), "a wrong spin() value")
        return float(sum(result))

    return Job("map", spin, range(n), items=n, check=check)


# --- numpy_gil_release: np.sort and matmul release the GIL ----------------------------

def sort_and_matmul(blocks: np.ndarray) -> float:
    """Per block: the median by a full sort, plus trace(B @ B.T) by matmul."""
    total = 0.0
    for block in blocks:
        ordered = np.sort(block, axis=None)
        total += float(ordered[ordered.size // 2]) + float(np.trace(block @ block.T))
    return total


def _numpy_gil_release(p: dict) -> Job:
    n, m = p["blocks"], p["side"]
    rng = np.random.default_rng(5)
    data = np.empty((n, m, m))
    for j in range(n):  # block j holds a permutation of j, j+1, ..., j + m*m - 1
        data[j] = (rng.permutation(m * m) + j).reshape(m, m)
    # Median and sum of squares of those values are known exactly (all below 2**53).
    q = m * m
    expected = sum((q // 2 + j) + (q * j * j + j * q * (q - 1) + (q - 1) * q * (2 * q - 1) // 6)
                   for j in range(n))

    def check(result):
        _expect(abs(result - expected) <= 1e-12 * expected, f"{result!r} != {expected}")
        return float(result)

    return Job("map_reduce", sort_and_matmul, data, operator.add, items=n,
               input_bytes=data.nbytes, check=check)


# --- big_input: a large array, read once -----------------------------------------------

def sum_sqrt(chunk: np.ndarray) -> float:
    """sum(sqrt(chunk)) in 4 MiB blocks, so no implementation allocates a chunk-sized copy."""
    out = np.empty(min(SQRT_BLOCK, len(chunk)))
    total = 0.0
    for start in range(0, len(chunk), SQRT_BLOCK):
        block = chunk[start:start + SQRT_BLOCK]
        total += float(np.sqrt(block, out=out[:len(block)]).sum())
    return total


def _big_input(p: dict) -> Job:
    n = p["bytes"] // 8
    data = np.arange(n, dtype=np.float64)
    expected = (2 / 3) * n ** 1.5 - 0.5 * n ** 0.5 + _ZETA_MINUS_HALF + n ** -0.5 / 24

    def check(result):
        _expect(abs(result - expected) <= 1e-9 * expected, f"{result!r} != {expected!r}")
        return float(result)

    return Job("map_reduce", sum_sqrt, data, operator.add, items=n, input_bytes=data.nbytes,
               check=check)


# --- tiny_tasks and startup: the cost per item and per call ----------------------------

def inc(x: int) -> int:
    return x + 1


def _tiny(p: dict) -> Job:
    n = p["items"]

    def check(result):
        _expect(result == list(range(1, n + 1)), "wrong or misordered results")
        return float(sum(result))

    return Job("map", inc, range(n), items=n, check=check)


def _executor_items(p: dict) -> Job:
    job = _tiny(p)
    job.data = list(job.data)  # a big list, as code written for concurrent.futures has
    return job


def _startup(p: dict) -> Job:
    ballast = np.ones(p["parent_bytes"] // 8) if p["parent_bytes"] else None

    def check(result):
        _expect(result == [2, 3], f"{result!r} != [2, 3]")
        return 5.0

    return Job("map", inc, [1, 2], items=2, check=check, keep=ballast,
               input_bytes=0 if ballast is None else ballast.nbytes)


# --- big_results: what crosses back ----------------------------------------------------

RESULT_BYTES = 16 << 20  # each item's result: 16 MiB of float64


def make_block(i: int) -> np.ndarray:
    return np.full(RESULT_BYTES // 8, i, dtype=np.float64)


def _big_results(p: dict) -> Job:
    n = p["chunks"]

    def check(result):
        _expect(len(result) == n, f"{len(result)} arrays for {n} items")
        for i, a in enumerate(result):
            _expect(a.shape == (RESULT_BYTES // 8,) and a[0] == i and a[-1] == i,
                    f"array {i} is wrong")
        return float(sum(a[0] for a in result))

    return Job("map", make_block, range(n), items=n, result_bytes=n * RESULT_BYTES,
               check=check)


# --- map_blocks: an array in, an array of the same rows out ---------------------------

def sin_plus_cos(block: np.ndarray) -> np.ndarray:
    """About 15 ns of work per element here: enough to need the cores, little enough that
    moving the result costs as much as computing it."""
    return np.sin(block) + np.cos(block)


def _map_blocks(p: dict) -> Job:
    n = p["bytes"] // 8
    h = 6.5 * np.pi / n  # x spans 3.25 turns: the sums below are far from zero
    data = np.arange(n, dtype=np.float64) * h
    # sum of sin(kh) and of cos(kh), k < n, in closed form
    common = np.sin(n * h / 2) / np.sin(h / 2)
    expected = common * (np.sin((n - 1) * h / 2) + np.cos((n - 1) * h / 2))
    probes = np.linspace(0, n - 1, 97).astype(np.int64)

    def check(result):
        _expect(isinstance(result, np.ndarray) and result.shape == (n,)
                and result.dtype == np.float64, "not one float64 array of the input's rows")
        total = float(result.sum())
        _expect(abs(total - expected) <= 1e-9 * n, f"sum {total!r} != {expected!r}")
        x = probes * h
        _expect(np.allclose(result[probes], np.sin(x) + np.cos(x), rtol=1e-12, atol=1e-15),
                "a wrong element")
        return total

    return Job("blocks", sin_plus_cos, data, items=n, input_bytes=2 * data.nbytes,
               result_bytes=data.nbytes, check=check)


def _pipe(p: dict) -> Job:
    from ._pipe import bandwidth
    total = p["chunks"] * RESULT_BYTES

    def check(moved):
        _expect(moved == total, f"{moved} of {total} bytes arrived")
        return float(moved)

    return Job("call", lambda: bandwidth(total), items=1, result_bytes=total, check=check)


_NO_ITEM_CHUNKS = "the items are already one chunk per task: same as ppe"

WORKLOADS = {w.name: w for w in [
    Workload("gil_bound",
             "Pure-Python work holds the GIL: how close does each pool get to the cores?",
             {"tiny": {"items": 16}, "quick": {"items": 150}, "full": {"items": 2000}},
             _gil_bound),
    Workload("numpy_gil_release",
             "np.sort and matmul release the GIL: do threads catch up with processes?",
             {"tiny": {"blocks": 8, "side": 64}, "quick": {"blocks": 32, "side": 256},
              "full": {"blocks": 192, "side": 256}},
             _numpy_gil_release,
             # One BLAS thread everywhere: the serial baseline is then one core, and the
             # speedups measure the map, not BLAS's own threads.
             env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
             skip={"ppe_tuned": _NO_ITEM_CHUNKS}),
    Workload("big_input",
             "A big array read once: what does getting the input to the workers cost?",
             {"tiny": {"bytes": 8 << 20}, "quick": {"bytes": 128 << 20},
              "full": {"bytes": 2 << 30}},
             _big_input, skip={"ppe_tuned": _NO_ITEM_CHUNKS}),
    Workload("tiny_tasks", "Trivial items: what does each item cost?",
             {"tiny": {"items": 20000}, "quick": {"items": 50000}, "full": {"items": 200000}},
             _tiny,
             skip={"ppe": "chunksize=1 sends each of the items alone (minutes); see ppe_tuned"}),
    Workload("executor",
             "The concurrent.futures API on trivial items: batch.Executor's chunked map and "
             "submit loop against ProcessPoolExecutor's, in items/s.",
             {"tiny": {"items": 1000}, "quick": {"items": 5000}, "full": {"items": 50000}},
             _executor_items,
             implementations=("executor", "ppe_tuned", "executor_submit", "ppe_submit")),
    Workload("startup", "A 2-item call from a small parent: the fixed cost of one call.",
             {s: {"parent_bytes": 0} for s in SIZES}, _startup, fresh_per_rep=True),
    Workload("startup_big", "The same 2-item call from a parent holding a big array.",
             {"tiny": {"parent_bytes": 8 << 20}, "quick": {"parent_bytes": 256 << 20},
              "full": {"parent_bytes": 2 << 30}},
             _startup, fresh_per_rep=True),
    Workload("big_results", "16 MiB results: how fast do results come back?",
             {"tiny": {"chunks": 4}, "quick": {"chunks": 8}, "full": {"chunks": 64}},
             _big_results),
    Workload("map_blocks",
             "An array in, an array of the same rows out: does map_blocks beat fn(array)?",
             {"tiny": {"bytes": 8 << 20}, "quick": {"bytes": 64 << 20},
              "full": {"bytes": 512 << 20}},
             _map_blocks, skip={"ppe_tuned": _NO_ITEM_CHUNKS}),
    Workload("pipe", "Raw os.pipe bandwidth, pipe enlarged to 1 MiB: big_results' ceiling.",
             {"tiny": {"chunks": 4}, "quick": {"chunks": 8}, "full": {"chunks": 64}},
             _pipe, implementations=("raw",)),
    Workload("scaling", "Fixed pure-Python work on 1 .. all cores: where does each pool flatten?",
             {"tiny": {"items": 16}, "quick": {"items": 120}, "full": {"items": 800}},
             _gil_bound),
    Workload("exec_true", "2,000 jobs of `true`: how many programs a second does each start?",
             {"tiny": {"jobs": 20}, "quick": {"jobs": 200}, "full": {"jobs": 2000}},
             functools.partial(_exec.items_job, "true"),
             implementations=("exec", "xargs", "parallel"), programs=True),
    Workload("exec_echo", "2,000 jobs of `sh -c 'echo {}'`, output captured: jobs a second?",
             {"tiny": {"jobs": 20}, "quick": {"jobs": 200}, "full": {"jobs": 2000}},
             functools.partial(_exec.items_job, "echo"),
             implementations=("exec", "xargs", "parallel"), programs=True),
    Workload("exec_pipe", "1 GiB of text through --pipe into `wc -l`: faster than one "
             "`wc -l`, in bounded memory?",
             {"tiny": {"bytes": 2 << 20}, "quick": {"bytes": 64 << 20},
              "full": {"bytes": 1 << 30}},
             # Not GNU parallel --pipe: 26 s a GiB here (0.04 GB/s, against 1.2 GB/s for
             # one wc -l), six times per run, and no target compares with it.
             # The rows after the first two are added measurements, not issue 10's row:
             # a bigger block, --round-robin, and the text file as stdin (spliced).
             _exec.text_job, implementations=("wc", "exec", "exec_32M", "exec_rr", "wc_file",
                                              "exec_file", "exec_file_32M", "exec_file_rr"),
             programs=True),
]}
