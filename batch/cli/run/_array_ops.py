"""Built-in mappers over arrays: sum, count, min, max, mean, std, var, stats, histogram.

Each computes a small state per chunk in the worker; states are merged in chunk order.
Mean, variance and standard deviation merge per-chunk (count, mean, M2) with Chan et
al.'s parallel update (1979): subtracting a running mean keeps the digits that the
textbook sum-of-squares formula loses when the data sit far from zero (1e9 + noise
gives a negative variance there). Like np.var, the variance divides by n (ddof=0).

On lines (`seq 100 | batch run - --map sum`) each line is read as one number.
"""

from __future__ import annotations

import math

import numpy as np

from ..._combine import NOTHING

# Moments are computed over blocks of rows of about this many elements, so the float64
# temporaries stay at a few MiB whatever the chunk size (a 64 MiB chunk would double a
# worker's memory otherwise).
BLOCK_ELEMENTS = 1 << 20


def numbers(lines) -> np.ndarray:
    """One number per line (blank lines skipped): int64 when every one is an integer."""
    words = [line.strip() for line in lines]
    words = [w for w in words if w]
    try:
        return np.array([int(w) for w in words], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:
        return np.array([float(w) for w in words], dtype=np.float64)
    except ValueError:
        bad = next(w for w in words if not _is_float(w))
        raise ValueError(f"not a number: {bad[:80]!r}") from None


def _is_float(word: str) -> bool:
    try:
        float(word)
        return True
    except ValueError:
        return False


def row_blocks(chunk: np.ndarray):
    per_row = max(1, chunk.size // max(1, len(chunk)))
    step = max(1, BLOCK_ELEMENTS // per_row)
    for i in range(0, len(chunk), step):
        yield chunk[i:i + step]


# --- moments: (count, sum, shift, mean - shift, M2, min, max) -----------------------------

def moments(chunk: np.ndarray):
    """Moments of a chunk, about a shift K (its first value): the mean is K + m.

    Data far from zero (1e9 + noise) lose digits in any mean computed from their sum; their
    differences from K are small and exact, so m and M2 keep every digit, and so does the
    difference of two chunks' means, (Kb - Ka) + (mb - ma), that the merge needs.
    """
    state = NOTHING
    shift = None
    for block in row_blocks(chunk):
        if not block.size:
            continue
        x = np.asarray(block, dtype=np.float64)
        if shift is None:
            shift = float(x.reshape(-1)[0])
        d = x.reshape(-1) - shift
        m = d.mean()
        d -= m
        # Squared and summed in place by numpy's pairwise sum, not `d @ d`: BLAS's dot
        # adds in an order that depends on its thread count, which differs per backend.
        m2 = float(np.square(d, out=d).sum())
        part = (x.size, block.sum(), shift, m, m2, block.min(), block.max())
        state = part if state is NOTHING else merge_moments(state, part)
    return state


def merge_moments(a, b):
    """Chan, Golub and LeVeque's pairwise update of (count, mean, M2), with shifts."""
    na, sa, ka, ma, m2a, loa, hia = a
    nb, sb, kb, mb, m2b, lob, hib = b
    n = na + nb
    delta = (kb - ka) + (mb - ma)
    return (n, sa + sb, ka, ma + delta * (nb / n), m2a + m2b + delta * delta * (na * nb / n),
            np.minimum(loa, lob), np.maximum(hia, hib))


def present(state) -> dict:
    n, total, shift, m, m2, lo, hi = state
    return {"count": n, "sum": total, "mean": shift + m, "std": math.sqrt(m2 / n),
            "var": m2 / n, "min": lo, "max": hi}


# --- the simple ones --------------------------------------------------------------------

def chunk_sum(chunk):
    return chunk.sum() if chunk.size else NOTHING


def chunk_count(chunk):
    return chunk.size


def chunk_min(chunk):
    return chunk.min() if chunk.size else NOTHING


def chunk_max(chunk):
    return chunk.max() if chunk.size else NOTHING


def chunk_range(chunk):
    return (chunk.min(), chunk.max()) if chunk.size else NOTHING


def merge_range(a, b):
    return (np.minimum(a[0], b[0]), np.maximum(a[1], b[1]))


def histogram_edges(bins: int, lo, hi, dtype) -> np.ndarray:
    """The edges np.histogram(a, bins) gives for data of `dtype` spanning [lo, hi].

    Counts need no helper: once the range is fixed np.histogram bins each element on its
    own, so the chunks' counts add up to exactly the whole array's.
    """
    # np.histogram itself, on an empty array of a's dtype: integer data get the same
    # float edges as np.histogram(a, bins).
    return np.histogram(np.empty(0, dtype=dtype), bins=bins, range=(lo, hi))[1]
