"""Big result arrays got from a worker's memory, not piped: pulled by the coordinator
(process_vm_readv), or pushed by a persistent worker (process_vm_writev) where allowed.

Every test here checks, through a wrapper around the coordinator's read or its push
request, that the arrays really took that path, so a silent fall back to the pipe (or
to the other path) cannot pass for it.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import batch
from batch import _platform, _wire
from batch._platform import _process_vm
from batch.backends import fork
from batch.backends._worker_handle import WorkerHandle
from roundtrip_catalogue import BIG as CATALOGUE_BIG
from roundtrip_catalogue import check_round_trip

pytestmark = pytest.mark.skipif(not _platform.HAS_FORK or not _platform.can_pull(),
                                reason="needs fork and process_vm_readv")

BIG = _platform.PULL_THRESHOLD


def _n(dtype) -> int:
    return BIG // np.dtype(dtype).itemsize + 3


# The round-trip catalogue's arrays (tests/test_contract.py), each made big enough to be
# pulled, plus the shapes and dtypes a pull could get wrong.
PULLED = {
    "int16_2d": lambda: np.arange(4 * (_n(np.int16) // 4), dtype=np.int16).reshape(-1, 4),
    "float64": lambda: np.arange(_n(np.float64), dtype=np.float64),
    "unicode": lambda: np.array(["a", "bc"] * (_n("<U2") // 2)),
    "datetime64": lambda: np.arange(_n("M8[s]")).astype("datetime64[s]"),
    "fortran": lambda: np.asfortranarray(np.arange(3.0 * (_n(np.float64) // 3)).reshape(3, -1)),
    "strided": lambda: np.arange(3 * _n(np.int64))[::3],
    "float16_3d": lambda: np.arange(8 * 8 * (_n(np.float16) // 64 + 1),
                                    dtype=np.float16).reshape(8, 8, -1),
    "complex": lambda: np.arange(_n(np.complex128), dtype=np.complex128) * (1 - 2j),
    "bool": lambda: np.arange(_n(np.bool_)) % 3 == 0,
    "big_endian": lambda: np.arange(_n(">i4"), dtype=">i4"),
    "zero_d": lambda: np.array(b"x" * (BIG + 5)),   # 0-d, one item past the threshold
}


@pytest.fixture(params=["pull", "push"])
def transport(request, monkeypatch):
    """How persistent workers' big arrays come back: "push" only where allowed."""
    if request.param == "push" and not _platform.can_push():
        pytest.skip("process_vm_writev into the parent is not allowed here")
    monkeypatch.setattr(_process_vm, "_push_ok", request.param == "push")
    return request.param


@pytest.fixture
def pulls(monkeypatch, transport):
    """The sizes of the arrays that came from workers' memory, pulled or pushed (on the
    transport's path only: a pushed array is not counted as pulled)."""
    seen = []
    real = _platform.read_process_memory
    real_push = WorkerHandle.push

    def counting(pid, address, view):
        seen.append(view.nbytes)
        real(pid, address, view)

    def counting_push(self, remote):
        seen.extend(a.nbytes for _, a in remote)
        real_push(self, remote)

    if transport == "pull":
        monkeypatch.setattr(_platform, "read_process_memory", counting)
    else:
        monkeypatch.setattr(WorkerHandle, "push", counting_push)
    return seen


@pytest.mark.parametrize("name", list(PULLED))
def test_catalogue_round_trips_through_a_pull(pulls, name):
    value = PULLED[name]()
    [out] = batch.pmap(lambda _: value, [0], backend="fork")
    assert pulls == [value.nbytes]
    assert type(out) is np.ndarray
    assert out.dtype == value.dtype and out.shape == value.shape
    np.testing.assert_array_equal(out, value)


def test_the_whole_round_trip_catalogue_through_pulls(pulls, monkeypatch):
    """Every big array of issue 9's catalogue (each dtype, byte order, C/F/strided, nested)
    takes the pull path: the worker inherits the lowered threshold."""
    monkeypatch.setattr(_platform, "PULL_THRESHOLD", CATALOGUE_BIG)
    check_round_trip(lambda values: batch.pmap(lambda _: values, [0], backend="fork")[0])
    assert len(pulls) > 100


def test_small_arrays_and_other_values_still_take_the_pipe(pulls):
    value = {"small": np.arange(10), "mid": np.ones(_wire.OOB_THRESHOLD), "s": "x"}
    [out] = batch.pmap(lambda _: value, [0], backend="fork")
    assert pulls == []
    np.testing.assert_array_equal(out["mid"], value["mid"])


def test_message_keeps_pulled_arrays_alive_and_off_the_pipe():
    a = np.ones(BIG)
    message = _wire.encode(_wire.RESULT, [a[::2], a], remote=True)
    assert len(message.held) == 2 and sum(len(bytes(p)) for p in message) < 300
    assert message.held[1] is a  # contiguous: no copy kept, the array itself


@pytest.mark.timeout(60)
def test_pulled_results_survive_later_runs_and_forks(pulls):
    first = batch.pmap(lambda i: np.full(_n(np.float64), float(i)), range(4), workers=2,
                       backend="fork")
    assert len(pulls) == 4
    batch.pmap(lambda i: np.full(_n(np.float64), -1.0), range(4), workers=2, backend="fork")
    assert [float(a[0]) for a in first] == [0.0, 1.0, 2.0, 3.0]
    # Read inside later workers: the receive buffers are inherited again after the run.
    sums = batch.pmap(lambda i: float(first[i].sum()), range(4), workers=2, backend="fork",
                      chunksize=1)
    assert sums == [float(i * _n(np.float64)) for i in range(4)]
    first[2][:] = 7.0  # and they are ordinary writable memory
    assert float(first[2].sum()) == 7.0 * _n(np.float64)


def _dead(pid: int) -> None:
    """Wait until `pid` has exited, without reaping it (the backend does that)."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


@pytest.mark.timeout(60)
def test_sigkill_while_filling_the_result_is_a_crash():
    def half_filled(_):
        a = np.zeros(_n(np.float64))
        a[: len(a) // 2] = 1.0
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(batch.WorkerCrashed, match=r"chunk 0.*SIGKILL"):
        batch.pmap(half_filled, [0], backend="fork")


def _kill_first(monkeypatch, stage: str) -> None:
    """SIGKILL the worker at `stage` of getting its result's arrays, from the coordinator."""
    real_pull, real_push = _platform.read_process_memory, WorkerHandle.push
    real_write = _platform.write_process_memory

    def kill_before_pull(pid, address, view):
        os.kill(pid, signal.SIGKILL)
        _dead(pid)
        real_pull(pid, address, view)

    def kill_before_push(self, remote):
        os.kill(self.pid, signal.SIGKILL)
        _dead(self.pid)
        real_push(self, remote)

    def half_written(pid, address, local, nbytes):  # in the worker, which inherits it
        real_write(pid, address, local, nbytes // 2)
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(_process_vm, "_push_ok", stage != "before pull")
    monkeypatch.setattr(_platform, "read_process_memory", kill_before_pull)
    monkeypatch.setattr(WorkerHandle, "push", kill_before_push)
    if stage == "during push":
        monkeypatch.setattr(WorkerHandle, "push", real_push)
        monkeypatch.setattr(_platform, "write_process_memory", half_written)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("persistent, stage", [(True, "before pull"), (False, "before pull"),
                                               (True, "before push"), (True, "during push")])
def test_sigkill_after_sending_before_the_read_is_a_crash(monkeypatch, persistent, stage):
    """One-shot workers are always pulled from: only a persistent one is asked to push."""
    if "push" in stage and not _platform.can_push():
        pytest.skip("process_vm_writev into the parent is not allowed here")
    _kill_first(monkeypatch, stage)
    items = range(2) if persistent else iter(range(2))  # a generator gets one-shot workers
    with pytest.raises(batch.WorkerCrashed, match=r"SIGKILL.*before its result was read"):
        batch.pmap(lambda i: np.full(_n(np.float64), float(i)), items, workers=1, backend="fork")
    with pytest.raises(batch.WorkerCrashed):  # a retry gets a new worker, killed the same way
        batch.pmap(lambda i: np.full(_n(np.float64), float(i)), items, workers=1, backend="fork",
                   retries=1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("persistent", [True, False])
def test_sigkill_after_the_read_loses_nothing(monkeypatch, persistent, transport):
    real = _platform.read_process_memory
    real_delivered = fork.ForkBackend._delivered

    def kill_after(pid, address, view):
        real(pid, address, view)
        os.kill(pid, signal.SIGKILL)

    def kill_after_push(self, worker):  # the arrays are here: the worker's ACK came
        out = real_delivered(self, worker)
        if transport == "push":
            assert not worker.reader.pushing
            os.kill(worker.pid, signal.SIGKILL)
        return out

    monkeypatch.setattr(_platform, "read_process_memory", kill_after)
    monkeypatch.setattr(fork.ForkBackend, "_delivered", kill_after_push)
    items = range(3) if persistent else iter(range(3))
    out = batch.pmap(lambda i: np.full(_n(np.float64), float(i)), items, workers=1, backend="fork",
                     chunksize=1, retries=2)
    assert [float(a[-1]) for a in out] == [0.0, 1.0, 2.0]


@pytest.mark.timeout(60)
def test_a_worker_dead_between_two_chunks_is_replaced(monkeypatch):
    """A persistent worker that dies once its message is in, before it is handed the
    next chunk: writing that chunk meets a closed pipe, and a new worker runs it. Before
    the fix the write's BrokenPipeError came out of pmap (3.13t's timing found it)."""
    from batch import _frames
    real = _frames.Reader.feed
    killed = []

    def feed(self, fd):
        ended = real(self, fd)
        if self.complete and not ended and not killed:
            killed.append(self.pid)
            os.kill(self.pid, signal.SIGKILL)
            _dead(self.pid)
        return ended

    monkeypatch.setattr(_frames.Reader, "feed", feed)
    out = batch.pmap(lambda i: np.full(_n(np.float64), float(i)), range(3), workers=1,
                     backend="fork", chunksize=1)
    assert killed and [float(a[-1]) for a in out] == [0.0, 1.0, 2.0]


def _mappings() -> list[str]:
    with open("/proc/self/maps") as f:
        return f.read().splitlines()


@pytest.mark.timeout(120)
def test_thousands_of_results_leave_no_fd_mapping_or_shared_memory(pulls):
    def fds():
        return sorted(os.listdir("/proc/self/fd"))

    work = [np.full(_n(np.float64), float(i)) for i in range(8)]
    batch.pmap(lambda i: work[i], range(8), workers=2, backend="fork")  # warm up: libraries loaded
    maps, fd_list = _mappings(), fds()
    for _ in range(250):  # 2,000 pulled results over 250 runs of two workers
        out = batch.pmap(lambda i: work[i], range(8), workers=2, backend="fork", chunksize=1)
        assert float(out[7][0]) == 7.0
        del out
    assert len(pulls) == 2008
    assert fds() == fd_list
    after = _mappings()
    assert len(after) <= len(maps) + 2  # the allocator may keep an arena or two
    new = set(line.split(None, 5)[-1] for line in after) - \
        set(line.split(None, 5)[-1] for line in maps)
    assert not any("memfd:" in name or "/dev/shm" in name for name in new)


@pytest.mark.timeout(60)
def test_a_denied_push_falls_back_to_a_pull(monkeypatch):
    if not _platform.can_push():
        pytest.skip("process_vm_writev into the parent is not allowed here")
    pulled = []
    real = _platform.read_process_memory

    def denied(pid, address, local, nbytes):  # in the worker, which inherits it
        raise PermissionError(1, "Operation not permitted")

    def counting(pid, address, view):
        pulled.append(view.nbytes)
        real(pid, address, view)

    monkeypatch.setattr(_process_vm, "_push_ok", True)
    monkeypatch.setattr(_platform, "write_process_memory", denied)
    monkeypatch.setattr(_platform, "read_process_memory", counting)
    out = batch.pmap(lambda i: np.full(_n(np.float64), float(i)), range(4), workers=2,
                     backend="fork")
    assert [float(a[-1]) for a in out] == [0.0, 1.0, 2.0, 3.0]
    assert len(pulled) == 4 and not _platform.can_push()


@pytest.mark.timeout(60)
def test_a_denied_pull_falls_back_to_the_pipe(monkeypatch):
    calls = []
    monkeypatch.setattr(_process_vm, "_push_ok", False)

    def denied(pid, address, view):
        calls.append(pid)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(_platform, "read_process_memory", denied)
    monkeypatch.setattr(_process_vm, "_pull_ok", True)
    out = batch.pmap(lambda i: np.full(_n(np.float64), float(i)), range(4), workers=2,
                     backend="fork")
    assert [float(a[0]) for a in out] == [0.0, 1.0, 2.0, 3.0]
    assert calls and not _platform.can_pull()
    denied_once = len(calls)
    again = batch.pmap(lambda i: np.full(_n(np.float64), float(i)), range(4), workers=2,
                       backend="fork")
    assert len(calls) == denied_once  # the pipe from now on
    assert float(again[3][-1]) == 3.0


def test_probe_refuses_what_yama_forbids(monkeypatch, tmp_path):
    scope = tmp_path / "ptrace_scope"
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/sys/kernel/yama/ptrace_scope":
            path = scope
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    scope.write_text("3\n")
    assert _process_vm._probe_pull() is False
    scope.write_text("1\n")
    assert _process_vm._probe_pull() is True
