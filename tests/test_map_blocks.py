"""batch.map_blocks: blocks of an array written into one output, against fn(whole)."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import batch
from batch import _blocks, _platform
from batch._platform import _process_vm


@pytest.fixture(autouse=True, params=["push", "memfd"])
def transport(request, monkeypatch):
    """Every test on both ways fork workers write the output (see _blocks.py)."""
    if request.param == "push" and not _platform.can_push():
        pytest.skip("process_vm_writev into the parent is not allowed here")
    monkeypatch.setattr(_process_vm, "_push_ok", request.param == "push")
    return request.param


def wave(b):
    return np.sin(b) + b * b


def flatten_rows(b):
    """3-d in, 2-d out: the trailing shape changes, the rows stay."""
    return b.reshape(len(b), -1) * 2.0


CASES = {
    "1d": (lambda: np.linspace(0, 10, 10_001), wave),
    "2d": (lambda: np.arange(3000.0).reshape(1000, 3), wave),
    "3d": (lambda: np.arange(24_000, dtype=np.float32).reshape(1000, 4, 6), flatten_rows),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_fn_on_the_whole_array(backend, case):
    make, fn = CASES[case]
    a = make()
    got = batch.map_blocks(fn, a, backend=backend, workers=2, chunks=7)
    want = fn(a)
    assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_default_blocks_bound_the_block_size():
    a = np.zeros(3 * _blocks.BLOCK_BYTES // 8)
    sizes = batch.map_blocks(lambda b: np.full(len(b), b.nbytes), a, workers=2)
    assert sizes.max() <= _blocks.BLOCK_BYTES and len(np.unique(sizes)) <= 2


def test_dtype_overrides_what_the_first_row_says(backend):
    a = np.arange(100.0)
    got = batch.map_blocks(lambda b: b * 1.5, a, dtype=np.float32, backend=backend, chunks=3)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, (a * 1.5).astype(np.float32))


def test_a_function_taking_out_writes_there():
    calls = []

    def scaled(b, out=None):
        calls.append(out is not None)
        return np.multiply(b, 3, out=out)

    a = np.arange(50.0)
    dest = np.empty_like(a)
    assert _blocks._compute(scaled, a, dest, _blocks.accepts_out(scaled)) is None
    assert calls == [True]
    np.testing.assert_array_equal(dest, a * 3)
    assert _blocks.accepts_out(np.sqrt) and not _blocks.accepts_out(len)
    got = batch.map_blocks(np.sqrt, np.arange(10_000.0), chunks=5, workers=2)
    np.testing.assert_array_equal(got, np.sqrt(np.arange(10_000.0)))


def test_out_memmap_is_written_in_place(tmp_path, backend):
    a = np.arange(40_000.0).reshape(10_000, 4)
    path = tmp_path / "out.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=a.shape)
    got = batch.map_blocks(wave, a, out=out, backend=backend, workers=2, chunks=9)
    assert got is out
    out.flush()
    del out, got
    np.testing.assert_array_equal(np.load(path), wave(a))


def test_out_plain_array_is_filled(backend):
    a = np.arange(1000.0)
    out = np.zeros(1000)
    got = batch.map_blocks(wave, a, out=out, backend=backend, chunks=4)
    assert got is out
    np.testing.assert_array_equal(out, wave(a))


def test_bad_shapes_are_clear_errors():
    a = np.arange(100.0)
    with pytest.raises(ValueError, match="as many rows"):
        batch.map_blocks(lambda b: b.sum(keepdims=True)[:0], a)
    with pytest.raises(ValueError, match="100 rows"):
        batch.map_blocks(wave, a, out=np.empty(99))
    with pytest.raises(ValueError, match="at least one dimension"):
        batch.map_blocks(wave, np.float64(3.0))
    with pytest.raises(batch.WorkerError, match=r"chunk \d+.*returned shape \(\d+,\)"):
        batch.map_blocks(lambda b: b if b[0] == 0 else b[1:], a, chunks=4, workers=2)


def test_empty_input(backend):
    got = batch.map_blocks(wave, np.zeros((0, 3)), backend=backend)
    assert got.shape == (0, 3)


def test_a_failing_block_names_its_chunk(backend):
    def fails_at_500(b):
        if 500 in b:
            raise KeyError("row 500")
        return b

    with pytest.raises(KeyError) as info:
        batch.map_blocks(fails_at_500, np.arange(1000), backend=backend, chunks=4)
    assert isinstance(info.value, batch.WorkerError) and info.value.chunk == 2


@pytest.mark.timeout(60)
def test_a_retried_block_is_written_again_whole(tmp_path):
    marker = tmp_path / "first-attempt"
    a = np.arange(8000.0)

    def dies_once_half_written(b, out=None):
        if 4000 in b and not marker.exists():
            marker.touch()
            out[:] = -1.0
            out[: len(out) // 2] = b[: len(out) // 2] * 10  # half of the real answer
            os.kill(os.getpid(), signal.SIGKILL)
        return np.multiply(b, 10, out=out)

    got = batch.map_blocks(dies_once_half_written, a, chunks=4, workers=2, retries=1,
                           backend="fork")  # a worker process to kill
    assert marker.exists()
    np.testing.assert_array_equal(got, a * 10)


@pytest.mark.timeout(60)
def test_a_raised_then_retried_block(tmp_path, backend):
    marker = tmp_path / "raised"

    def flaky(b):
        if 10 in b and not marker.exists():
            marker.touch()
            raise RuntimeError("first time only")
        return b + 1

    got = batch.map_blocks(flaky, np.arange(100), backend=backend, chunks=5, retries=1)
    np.testing.assert_array_equal(got, np.arange(1, 101))


def _memfd_mappings() -> int:
    with open("/proc/self/maps") as f:
        return sum("memfd:batch-output" in line for line in f)


def test_a_failed_push_run_frees_its_output(transport, monkeypatch):
    if transport != "push":
        pytest.skip("the memfd case is the test below")
    made = []
    real = _platform.private_output

    def recording(nbytes):
        made.append(real(nbytes))
        return made[-1]

    monkeypatch.setattr(_platform, "private_output", recording)
    with pytest.raises(batch.WorkerError) as info:
        batch.map_blocks(lambda b: 1 / 0 if b[0] > 1e6 else b, np.arange(4e6), workers=2,
                         backend="fork")
    assert made[0].closed and info.value.chunk is not None  # unmapped, exception still held
    got = batch.map_blocks(wave, np.arange(4e6), workers=2, backend="fork")
    assert not made[1].closed
    np.testing.assert_array_equal(got, wave(np.arange(4e6)))


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux-only")
def test_the_result_is_the_only_mapping_left_and_goes_with_it(transport):
    if transport != "memfd":
        pytest.skip("the output is a memfd only on the memfd path")
    before = _memfd_mappings()
    got = batch.map_blocks(wave, np.arange(100_000.0), workers=2, backend="fork")
    assert _memfd_mappings() == before + 1  # the private view the result lives in
    with pytest.raises(batch.WorkerError):
        batch.map_blocks(lambda b: 1 / 0 if b[0] > 50_000 else b, np.arange(100_000.0),
                         workers=2, backend="fork")
    assert _memfd_mappings() == before + 1
    np.testing.assert_array_equal(got, wave(np.arange(100_000.0)))
    del got
    assert _memfd_mappings() == before


def test_later_workers_see_the_result_copy_on_write():
    got = batch.map_blocks(wave, np.arange(10_000.0), workers=2, backend="fork")

    def scribble(i):
        got[:] = -1.0  # in the worker's copy only
        return float(got[i])

    assert batch.pmap(scribble, [0, 1], workers=2, chunksize=1, backend="fork") == [-1.0, -1.0]
    np.testing.assert_array_equal(got, wave(np.arange(10_000.0)))
    got[:5] = 0.0  # and the caller may write its own copy
    assert got[:5].sum() == 0.0 and got[5] == wave(np.float64(5.0))


def test_inside_a_worker_it_runs_serially():
    def nested(i):
        return float(batch.map_blocks(wave, np.arange(100.0) + i).sum())

    assert batch.pmap(nested, [0, 1], workers=2) == [float(wave(np.arange(100.0) + i).sum())
                                                     for i in (0, 1)]
