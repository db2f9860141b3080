"""`batch exec --backend dask`: one job run as a program on a Dask worker.

    coordinator (this process)                       a Dask worker (any machine)
    ──────────────────────────                       ───────────────────────────
    submit_job(client, argv, stdin, env, cwd, timeout)
      client.submit(_run, ..., key=batch-exec-…) ──► Popen(argv) in a session of its own
                                                     (its own process group), no shell
                                                     stdin written, stdout/stderr read whole
                                                     timeout: SIGTERM the group, GRACE, SIGKILL
    result_of(future) ◄────────── JobResult ──────── returncode, signal, stdout, stderr,
                                                     start, runtime, host
    cancel_job(client, future) ─ client.run ───────► the job's group: SIGTERM, GRACE, SIGKILL

The program and the files it names must exist on the worker: argv is run there as given.
`env` adds variables to the worker's own environment (`--env VAR=VALUE`) rather than
replacing it: the coordinator's PATH and HOME mean nothing on another machine. A
program that cannot be started is not an exception on the worker but a result with
`error` set and the shell's status for it (127 not found, 126 not executable), so the
caller reports it like any failed job (GNU parallel's 255 is the CLI's business).

Dask cannot interrupt a running task, so the task never blocks for long: it waits for
the program in slices of POLL seconds and checks its deadline and a stop flag between
them. cancel_job sets that flag through `client.run`, on the worker that runs the job,
so Ctrl-C on the coordinator stops the program on the cluster too instead of leaving
it to run out its timeout. Dask is imported by the caller (the backend's
_dask_cluster, which gives the install hint); this module itself imports no Dask.
"""

from __future__ import annotations

import dataclasses
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
import uuid

# After SIGTERM, how long the job's group has to exit before SIGKILL: long enough for a
# program to flush and remove its temporary files, short enough for Ctrl-C to feel prompt.
GRACE = 2.0

# How often the task looks at its deadline and stop flag while the program runs. Each
# look is a wakeup of a worker thread; 50 ms is under any timeout worth giving a job.
POLL = 0.05

# Bytes per write to the job's stdin (non-blocking: a partial write is fine) and per read
# of its output: one pipe's worth, so a turn of the loop never holds a worker thread long.
WRITE_CHUNK = READ_CHUNK = 1 << 16

_STATUS_NOT_FOUND, _STATUS_NOT_EXECUTABLE = 127, 126


@dataclasses.dataclass(frozen=True)
class JobResult:
    """What came back from one run of a program on a worker: small, and picklable."""
    returncode: int          # the program's exit status; -N if signal N ended it
    signal: int              # the signal that ended it, 0 if it exited
    stdout: bytes
    stderr: bytes
    start: float             # time.time() on the worker when it started (joblog Starttime)
    runtime: float           # seconds it ran (joblog JobRuntime)
    host: str                # the worker's host name (joblog Host)
    timed_out: bool = False  # stopped by `timeout` (SIGTERM, then SIGKILL after GRACE)
    cancelled: bool = False  # stopped by cancel_job
    error: str | None = None  # why the program could not be started at all


def submit_job(client, argv, stdin: bytes | None = None, env: dict | None = None,
               cwd: str | None = None, timeout: float | None = None):
    """Start the job on a worker of `client`; a distributed.Future of its JobResult."""
    argv = [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in argv]
    if not argv:
        raise ValueError("a job needs a program to run")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    key = f"batch-exec-{uuid.uuid4().hex}"
    return client.submit(_run, key, argv, stdin, dict(env or {}), cwd, timeout, key=key,
                         pure=False, retries=0)


def result_of(future) -> JobResult:
    """The JobResult of a submitted job; a BatchError if the worker itself failed."""
    from ... import _errors
    try:
        return future.result()
    except Exception as exc:  # KilledWorker, a lost connection, a cancelled future
        raise _errors.BatchError(
            f"the Dask worker running the job failed: {type(exc).__name__}: {exc}") from exc


def run_job_on_dask(client, argv, stdin: bytes | None = None, env: dict | None = None,
                    cwd: str | None = None, timeout: float | None = None) -> JobResult:
    """Run one program on a Dask worker and wait for it: submit_job, then result_of."""
    future = submit_job(client, argv, stdin, env, cwd, timeout)
    try:
        return result_of(future)
    except BaseException:
        if not future.done():  # Ctrl-C while waiting: the program must not run on
            cancel_job(client, future)
        raise


def cancel_job(client, future) -> None:
    """Stop the job's program on its worker (SIGTERM, GRACE, SIGKILL) and the future."""
    try:
        client.run(_stop, future.key)
    except Exception:
        pass  # the worker is gone, and its job with it
    future.cancel()


# --- on the worker ----------------------------------------------------------------------

_stops: dict[str, threading.Event] = {}   # job key -> set by cancel_job


def _stop(key: str) -> bool:
    event = _stops.get(key)
    if event is not None:
        event.set()
    return event is not None


def _run(key, argv, stdin, env, cwd, timeout) -> JobResult:
    host = socket.gethostname()
    start, t0 = time.time(), time.perf_counter()
    stop = _stops[key] = threading.Event()
    try:
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                env={**os.environ, **env}, start_new_session=True, close_fds=True,
                restore_signals=True)
        except OSError as exc:
            status = (_STATUS_NOT_FOUND if isinstance(exc, FileNotFoundError)
                      else _STATUS_NOT_EXECUTABLE)
            return JobResult(status, 0, b"", b"", start, time.perf_counter() - t0, host,
                             error=f"cannot run {argv[0]}: {exc.strerror or exc}")
        out, err, why = _communicate(proc, stdin, timeout, stop, t0)
        code = proc.returncode
        return JobResult(code, -code if code < 0 else 0, out, err, start,
                         time.perf_counter() - t0, host, timed_out=why == "timeout",
                         cancelled=why == "cancel")
    finally:
        _stops.pop(key, None)


def _communicate(proc, stdin, timeout, stop, t0):
    """(stdout, stderr, why it was stopped or None); the process is reaped on return.

    Our own selector loop, not Popen.communicate in slices: communicate(input, timeout)
    sends input only in its first call, and a retry after TimeoutExpired never writes
    the rest nor closes stdin, so `cat` with 4 MB of input waited forever under load.
    """
    deadline = None if timeout is None else t0 + timeout
    out = {proc.stdout: [], proc.stderr: []}
    data, offset = memoryview(stdin or b""), 0
    why, kill_at = None, None
    try:
        with selectors.DefaultSelector() as sel:
            for f in out:
                sel.register(f, selectors.EVENT_READ)
            if proc.stdin is not None:
                if len(data):
                    os.set_blocking(proc.stdin.fileno(), False)  # a write never waits
                    sel.register(proc.stdin, selectors.EVENT_WRITE)
                else:
                    proc.stdin.close()
            while sel.get_map() or proc.poll() is None:
                now = time.perf_counter()
                if why is None and (stop.is_set() or (deadline is not None and now >= deadline)):
                    why = "cancel" if stop.is_set() else "timeout"
                    _kill_group(proc.pid, signal.SIGTERM)
                    kill_at = now + GRACE
                elif kill_at is not None and now >= kill_at:
                    _kill_group(proc.pid, signal.SIGKILL)
                    kill_at = None
                if not sel.get_map():  # pipes closed, program still running: wait for it
                    try:
                        proc.wait(timeout=POLL)
                    except subprocess.TimeoutExpired:
                        pass
                    continue
                for key, _ in sel.select(POLL):
                    f = key.fileobj
                    if f is proc.stdin:
                        try:
                            offset += os.write(f.fileno(), data[offset:offset + WRITE_CHUNK])
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:
                            offset = len(data)  # the program stopped reading: fine
                        if offset >= len(data):
                            sel.unregister(f)
                            f.close()
                    else:
                        chunk = os.read(f.fileno(), READ_CHUNK)
                        if chunk:
                            out[f].append(chunk)
                        else:
                            sel.unregister(f)
                            f.close()
    except BaseException:
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None and not f.closed:
                f.close()
    if why is not None:  # the leader may be gone while a grandchild holds on: not for long
        _kill_group(proc.pid, signal.SIGKILL)
    return b"".join(out[proc.stdout]), b"".join(out[proc.stderr]), why


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
