"""The Dask backend: the contract suite and the fault catalogue, on one LocalCluster.

How the shared suites run here without changing their files: every test of
test_contract.py that takes the `backend` fixture is put in this module's namespace, so
pytest collects it a second time here, where the `backend` fixture below says "dask" (and
points runs that name no cluster at the shared one); the fault cases that apply are
imported from test_faults by name the same way. The cluster
(LocalCluster, 2 single-threaded worker processes) starts once for the module, because a
start takes a second or more. Where Dask is not installed, every test that needs it is
skipped with the reason; the tests of what happens without Dask still run.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import logging
import operator
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import batch
from batch import _coordinator, backends
from batch.backends._base import Task
import test_contract
from test_contract import square
from test_faults import (  # noqa: F401  the fault catalogue cases that apply to Dask
    test_exception_that_cannot_be_rebuilt,
    test_exception_with_unencodable_args,
    test_imap_keeps_what_it_delivered,
    test_raise_is_worker_error_and_original_type,
    test_retries_recover_from_a_one_off_exception,
    test_sys_exit_never_exits_the_caller,
)

# The contract suite, run again on Dask: the tests that take the backend fixture.
globals().update({name: test for name, test in vars(test_contract).items()
                  if name.startswith("test_") and callable(test)
                  and "backend" in inspect.signature(test).parameters})

pytestmark = pytest.mark.timeout(60)

NO_DASK = "Dask is not installed (pip install 'batch[dask]')"


def _distributed():
    return pytest.importorskip("distributed", reason=NO_DASK)


def test_fork_errors_are_unchanged_by_importing_distributed():
    """distributed installs tblib's reducer for every exception class, process-wide;
    batch pickles a worker's exception by its own __reduce__ all the same."""
    _distributed()
    with pytest.raises(batch.WorkerError) as info:
        batch.pmap(lambda x: sys.exit(2), [0], backend="fork")
    assert isinstance(info.value.__cause__, SystemExit) and info.value.__cause__.code == 2


@pytest.fixture(scope="module")
def dask_client():
    """One LocalCluster for the module, as the issue asks: 2 processes, 1 thread each."""
    distributed = _distributed()
    import dask
    from multiprocessing import resource_tracker

    tracker_was_running = resource_tracker._resource_tracker._pid is not None
    # A chunk whose worker dies fails at once, instead of killing up to 3 more workers
    # (Dask's default allowed-failures) before the test sees it.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=":0",
                                           silence_logs=logging.CRITICAL)
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()
    if not tracker_was_running:
        # multiprocessing's spawn left its resource tracker running as our child; the
        # next module's leak check would take it for a leaked worker. (Private, since 3.8.)
        resource_tracker._resource_tracker._stop()


@pytest.fixture
def backend(dask_client, monkeypatch):
    """The contract suite's backend: Dask, on the shared cluster.

    A Pool that names no cluster would start a LocalCluster of its own (seconds each);
    here it is given the shared client instead.
    """
    real = backends.cluster

    def shared(name, *, workers=None, address=None, client=None):
        if name == "dask" and address is None and client is None:
            client = dask_client
        return real(name, workers=workers, address=address, client=client)

    monkeypatch.setattr(backends, "cluster", shared)
    return "dask"


# --- conftest's leak check, for a module whose clusters outlive each test --------------

@pytest.fixture(autouse=True)
def no_leaks(request):
    """After every test: no new child process but the cluster's own workers, and no new
    pipe (unless a worker was restarted: its nanny opens pipes to the new process)."""
    clients = [request.getfixturevalue(name) for name in ("dask_client", "scheduler")
               if name in request.fixturenames]
    client = clients[0] if clients and not isinstance(clients[0], str) else None
    workers, children, pipes = _workers(client), _children(), _fds("pipe:")
    yield
    new_workers = _workers(client)
    left = _children() - children - new_workers
    assert not left, f"child processes left behind: {sorted(left)}"
    if new_workers == workers:
        assert not _fds("pipe:") - pipes, "pipes left open"


def _children() -> set[int]:
    try:
        import psutil  # a dependency of distributed
    except ImportError:  # no Dask, so no cluster: any child at all is a leak
        try:
            return {-1} if os.waitpid(-1, os.WNOHANG) is not None else set()
        except ChildProcessError:
            return set()
    return {p.pid for p in psutil.Process().children()}


def _workers(client) -> set[int]:
    return set(client.run(os.getpid).values()) if client is not None else set()


def _fds(kind: str) -> set[int]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(kind):
                found.add(int(fd))
        except OSError:
            pass
    return found


def _settle(client, timeout: float = 15) -> None:
    """Wait until no worker thread is still running a cancelled chunk, and both workers
    are back: Dask cannot stop a running task, and a killed worker restarts."""
    client.wait_for_workers(2, timeout=timeout)
    deadline = time.monotonic() + timeout
    while any(client.run(lambda dask_worker: len(dask_worker.state.executing)).values()):
        assert time.monotonic() < deadline, "a Dask worker stayed busy"
        time.sleep(0.05)


def _batch_keys(client, timeout: float = 5) -> list:
    """The scheduler's tasks of batch runs, once it has forgotten the cancelled ones."""
    deadline = time.monotonic() + timeout
    while True:
        keys = client.run_on_scheduler(
            lambda dask_scheduler: [k for k in dask_scheduler.tasks
                                    if str(k).startswith("batch-")])
        if not keys or time.monotonic() > deadline:
            return keys
        time.sleep(0.05)


# --- without Dask, and the options ------------------------------------------------------

def test_resolving_dask_does_not_import_it():
    code = ("import sys, batch, batch.backends as b; assert b.resolve('dask') == 'dask'; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_without_dask_creating_it_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    for name in ("batch.backends.dask", "batch.backends._dask_cluster"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ImportError, match=r"pip install 'batch\[dask\]'") as info:
        backends.create("dask", workers=1)
    assert isinstance(info.value, batch.BatchError)  # the CLI prints it in one line
    with pytest.raises(ImportError, match=r"batch\[dask\]"):
        batch.pmap(square, [1], backend="dask")


def test_other_backends_refuse_dask_options():
    with pytest.raises(TypeError, match="address"):
        batch.pmap(square, [1], backend="thread", address="tcp://127.0.0.1:8786")
    with pytest.raises(TypeError, match="client"):
        backends.create("serial", workers=1, client=object())


def test_address_and_client_together_are_refused(dask_client):
    with pytest.raises(ValueError, match="not both"):
        batch.Pool(backend="dask", address="tcp://127.0.0.1:8786", client=dask_client)


def test_unreachable_scheduler_is_one_clear_error():
    _distributed()
    threads = threading.active_count()
    t0 = time.monotonic()
    with pytest.raises(batch.BatchError, match="cannot reach the Dask scheduler at tcp://"):
        batch.pmap(square, [1], backend="dask", address=f"tcp://127.0.0.1:{_free_port()}")
    assert time.monotonic() - t0 < 5
    assert threading.active_count() == threads  # no event loop left running
    with pytest.raises(ValueError, match="not a Dask scheduler address"):
        batch.Pool(backend="dask", address="no-port-here")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- inputs: scattered once, mapped by the workers, or sent as a small tuple ------------

def _count_calls(monkeypatch, client, name) -> list:
    calls = []
    real = getattr(client, name)

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(client, name, counting)
    return calls


def test_array_chunks_are_scattered_once_even_on_retry(dask_client, monkeypatch, tmp_path):
    from batch.backends import dask as dask_backend

    scattered = _count_calls(monkeypatch, dask_client, "scatter")
    data = np.arange(4 * dask_backend.SCATTER_MIN_BYTES // 8 + 4, dtype=np.float64)

    def slow_once(chunk):
        marker = tmp_path / f"chunk-{int(chunk[0])}"
        if chunk[0] == 0 and not marker.exists():
            marker.write_text("slow")
            time.sleep(2)
        return chunk.sum()

    total = batch.map_reduce(slow_once, operator.add, data, chunks=4, timeout=1, retries=1,
                             backend="dask", client=dask_client)
    assert total == data.sum()
    assert len(scattered) == 4  # the timed-out chunk 0 ran again on its scattered copy
    _settle(dask_client)
    scattered.clear()
    small = np.arange(1000.0)  # chunks smaller than SCATTER_MIN_BYTES travel in their task
    assert batch.map_reduce(np.sum, operator.add, small, chunks=4, backend="dask",
                            client=dask_client) == small.sum()
    assert scattered == []


def test_memmapped_npy_is_mapped_by_each_worker(dask_client, monkeypatch, tmp_path):
    scattered = _count_calls(monkeypatch, dask_client, "scatter")
    path = tmp_path / "rows.npy"
    np.save(path, np.arange(3000, dtype=np.int32).reshape(1000, 3))
    data = np.load(path, mmap_mode="r")

    def where(chunk):
        return [(type(chunk).__name__, chunk.filename, os.getpid(), int(chunk[0, 0]))]

    seen = batch.map_reduce(where, operator.add, data, chunks=5, backend="dask",
                            client=dask_client)
    assert scattered == []
    assert {kind for kind, *_ in seen} == {"memmap"}
    assert {name for _, name, *_ in seen} == {str(path)}
    assert os.getpid() not in {pid for *_, pid, _ in seen}
    assert [first for *_, first in seen] == [0, 600, 1200, 1800, 2400]
    assert batch.map_reduce(np.sum, operator.add, data, backend="dask",
                            client=dask_client) == data.sum()


def test_sliced_memmap_is_scattered_not_misread(dask_client, tmp_path):
    """A slice of a memmap keeps its parent's offset: reading the file there would be wrong."""
    np.save(tmp_path / "a.npy", np.arange(100.0))
    part = np.load(tmp_path / "a.npy", mmap_mode="r")[10:20]
    chunks = batch.map_reduce(lambda c: [c.tolist()], operator.add, part, chunks=2,
                              backend="dask", client=dask_client)
    assert chunks == [list(np.arange(10.0, 15.0)), list(np.arange(15.0, 20.0))]


def test_text_ranges_are_read_by_the_workers(dask_client, tmp_path):
    """What the CLI sends for a text file: (path, byte range), read on the worker."""
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    cuts = [0, 2000, 4000, path.stat().st_size]

    def count(span):
        name, a, b = span
        with open(name, "rb") as f:
            f.seek(a)
            return f.read(b - a).count(b"\n"), os.getpid()

    tasks = [Task(i, None, 0, count, (str(path), a, b)) for i, (a, b) in
             enumerate(zip(cuts, cuts[1:]))]
    backend = backends.create("dask", workers=2, client=dask_client)
    outs = list(_coordinator.run(backend, tasks, workers=2))
    assert sum(o.result[0] for o in outs) == 1000
    assert {o.pid for o in outs} == {o.result[1] for o in outs} != {os.getpid()}


# --- faults -----------------------------------------------------------------------------

def test_unpicklable_result_is_a_result_error(dask_client):
    with pytest.raises(batch.ResultError, match=r"chunk 0.*generator"):
        batch.pmap(lambda _: (x for x in []), [0], client=dask_client, backend="dask")


def test_killed_worker_is_worker_crashed(dask_client):
    def f(x):
        if x == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return x

    with pytest.raises(batch.WorkerCrashed, match=r"chunk 1 \(item 1\).*died") as info:
        batch.pmap(f, range(3), chunksize=1, backend="dask", client=dask_client)
    assert info.value.chunk == 1 and info.value.items == range(1, 2)
    _settle(dask_client)


def test_retries_recover_from_a_one_off_worker_death(dask_client, tmp_path):
    def f(x):
        marker = tmp_path / f"crashed-{x}"
        if x == 1 and not marker.exists():
            marker.write_text("once")
            os.kill(os.getpid(), signal.SIGKILL)
        return x

    assert batch.pmap(f, range(3), chunksize=1, retries=1, backend="dask",
                      client=dask_client) == [0, 1, 2]
    _settle(dask_client)


def test_timeout_is_task_timeout(dask_client):
    t0 = time.monotonic()
    with pytest.raises(batch.TaskTimeout) as info:
        batch.pmap(lambda x: time.sleep(2 if x == 0 else 0), range(4), chunksize=1,
                   timeout=0.5, backend="dask", client=dask_client)
    assert info.value.chunk == 0 and info.value.timeout == 0.5
    assert time.monotonic() - t0 < 1.8
    _settle(dask_client)


def test_retries_are_dasks_and_counted_once(dask_client, monkeypatch, tmp_path):
    submitted = _count_calls(monkeypatch, dask_client, "submit")
    log = tmp_path / "attempts"

    def fails_twice(x):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        if len(log.read_text().splitlines()) <= 2:
            raise ConnectionError("flaky")
        return x + 1

    assert batch.pmap(fails_twice, [41], retries=2, backend="dask", client=dask_client) == [42]
    assert len(log.read_text().splitlines()) == 3
    assert len(submitted) == 1  # Dask re-ran it; batch submitted it once

    log.unlink()
    submitted.clear()
    with pytest.raises(ConnectionError):
        batch.pmap(lambda x: fails_twice(x) and 1 / 0, [0], retries=1, backend="dask",
                   client=dask_client)
    assert len(log.read_text().splitlines()) == 2  # 1 + retries, not (1 + retries) ** 2
    assert len(submitted) == 1


def test_fail_fast_cancels_the_rest_of_the_run(dask_client):
    def f(x):
        if x == 0:
            time.sleep(0.3)
            raise KeyError(x)
        time.sleep(1.5)
        return x

    with pytest.raises(KeyError):
        batch.pmap(f, range(6), chunksize=1, workers=2, backend="dask", client=dask_client)
    assert _batch_keys(dask_client) == []
    _settle(dask_client)


@pytest.mark.timeout(30)
def test_ctrl_c_cancels_the_run_and_leaves_the_cluster_usable(dask_client):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    try:
        t0 = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            batch.pmap(time.sleep, [1.0] * 20, chunksize=1, workers=2, backend="dask",
                       client=dask_client)
        assert time.monotonic() - t0 < 2
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert _batch_keys(dask_client) == []
    assert batch.pmap(square, range(50), backend="dask", client=dask_client) == \
        [x * x for x in range(50)]
    assert dask_client.status == "running"
    _settle(dask_client)


def test_pool_submit_settles_every_future_on_close(dask_client):
    pool = batch.Pool(backend="dask", client=dask_client)
    assert pool.workers == 2  # the cluster's threads
    done = pool.submit(pow, 2, 10)
    pool.close()
    assert done.done() and done.result() == 1024
    with pytest.raises(LookupError):
        with batch.Pool(backend="dask", client=dask_client) as pool:
            slow = pool.submit(time.sleep, 1.5)
            raise LookupError("leaving the with block cancels what is still running")
    with pytest.raises(concurrent.futures.CancelledError):
        slow.result(timeout=0)
    assert dask_client.status == "running"  # a given client is never closed
    _settle(dask_client)


# --- a LocalCluster of our own: one call, or a Pool's lifetime ---------------------------

@pytest.mark.timeout(90)
def test_own_local_cluster_lives_for_the_call_or_the_pool(dask_client):
    before = _children()
    assert batch.pmap(square, range(5), backend="dask", workers=1) == [0, 1, 4, 9, 16]
    assert _children() == before  # shut down with the call

    with batch.Pool(1, backend="dask") as pool:
        first = pool.map(lambda _: os.getpid(), [0])
        assert pool.map_reduce(sum, operator.add, list(range(100))) == 4950
        assert pool.map(lambda _: os.getpid(), [0]) == first  # the same cluster
        assert len(_children() - before) == 1  # its one worker process
    assert _children() == before  # shut down with the Pool

    it = batch.imap(square, range(100), backend="dask", workers=1, chunksize=10)
    assert next(it) == 0
    it.close()
    assert _children() == before  # shut down when the iterator was closed


# --- a real scheduler and two workers, as separate processes -----------------------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(batch.__file__)))


def _default_signals():
    # A background job inherits SIGINT ignored; the cluster must stop when told to.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """`dask scheduler` and two `dask worker`s on 127.0.0.1: the scheduler's address.

    Each runs in its own session, so that stopping its process group also stops the worker
    process its nanny started; teardown checks that nothing of them is left.
    """
    distributed = _distributed()
    tmp = tmp_path_factory.mktemp("dask-cluster")
    info = tmp / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (REPO, os.environ.get("PYTHONPATH")) if p))  # the workers import batch
    procs = []

    def start(name, *args):
        log = open(tmp / f"{name}.log", "wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], env=env,
                                      cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True,
                                      preexec_fn=_default_signals))
        log.close()

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
              "--no-dashboard", "--scheduler-file", str(info))
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            assert procs[0].poll() is None, (tmp / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        address = __import__("json").loads(info.read_text())["address"]
        for i in range(2):
            start(f"worker{i}", "worker", address, "--nworkers", "1", "--nthreads", "1",
                  "--host", "127.0.0.1", "--no-dashboard",
                  "--local-directory", str(tmp / f"worker{i}"))
        with distributed.Client(address, set_as_default=False, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        _stop_groups(procs)


def _stop_groups(procs) -> None:
    """SIGTERM each process group, then SIGKILL what is left; reap; assert none remains."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        for proc in procs:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_group_alive(p.pid) for p in procs):
            for proc in procs:
                proc.poll()
            time.sleep(0.1)
    for proc in procs:
        proc.wait(timeout=5)
    assert not any(_group_alive(p.pid) for p in procs), "a Dask process outlived the test"


def _group_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


@pytest.mark.timeout(120)
def test_real_scheduler_from_python(scheduler, tmp_path):
    sockets = _fds("socket:")
    data = np.random.default_rng(1).random(200_000)
    np.save(tmp_path / "x.npy", data)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    # The same chunks folded in the same order: the same bits as any other backend. (Not
    # fork here: this process has Dask's threads alive, and fork would warn about them.)
    expected = batch.map_reduce(np.sum, operator.add, data, chunks=8, backend="serial")
    assert expected == pytest.approx(data.sum())
    for arr in (data, mapped):  # scattered chunks; rows each worker maps from the file
        assert batch.map_reduce(np.sum, operator.add, arr, chunks=8, backend="dask",
                                address=scheduler) == expected
    with batch.Pool(backend="dask", address=scheduler) as pool:
        assert pool.workers == 2  # the cluster's threads
        pids = pool.map(lambda _: (time.sleep(0.2), os.getpid())[1], range(4), chunksize=1)
    assert len(set(pids)) == 2 and not set(pids) & (_children() | {os.getpid()})
    assert _fds("socket:") == sockets  # every connection of those calls is closed


def _cli(*args, env=None):
    proc = subprocess.run([sys.executable, "-m", "batch", "run", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.timeout(240)
def test_cli_on_a_real_scheduler_matches_fork(scheduler, tmp_path):
    """`batch run --backend dask --scheduler ADDRESS` on a .npy and a text file."""
    npy = tmp_path / "numbers.npy"
    np.save(npy, np.random.default_rng(2).normal(size=(50_000, 2)))
    text = tmp_path / "words.txt"
    text.write_text("".join(f"line {i} has {'some ' * (i % 7)}words\n" for i in range(20_000)))
    for path, how in ((npy, ["--map", "stats"]), (text, ["--map", "words"])):
        same = [str(path), *how, "--workers", "2", "--chunks", "8"]
        on_fork = _cli(*same, "--backend", "fork")
        assert _cli(*same, "--backend", "dask", "--scheduler", scheduler) == on_fork
    assert _cli(str(npy), "--map", "sum", "--workers", "2", "--chunks", "8", "--backend",
                "dask", env={"BATCH_SCHEDULER": scheduler}) == \
        _cli(str(npy), "--map", "sum", "--workers", "2", "--chunks", "8", "--backend", "fork")


def test_map_blocks_writes_the_blocks_workers_send_back(backend):
    a = np.arange(3000.0).reshape(1000, 3)
    got = batch.map_blocks(lambda b: np.sin(b) + b, a, backend=backend, chunks=4)
    np.testing.assert_array_equal(got, np.sin(a) + a)
    out = np.zeros_like(a)
    assert batch.map_blocks(np.cos, a, out=out, backend=backend, chunks=3) is out
    np.testing.assert_array_equal(out, np.cos(a))
