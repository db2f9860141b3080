"""The harness: which measurements to make, and making each one in a process of its own.

    plan(): workloads x implementations (x worker counts for `scaling`)
        │
        ▼   one at a time, never two at once
    _Child: python -m batch._bench._child  ── builds the input, then waits
        │   1 untimed repetition, the tree's memory sampled every SAMPLE_INTERVAL
        │   `repeat` timed repetitions, nothing sampled
        ▼
    a row: times, median/min/max, digest, peak memory  ─► _targets (speedups, targets)

The first repetition doubles as the warm-up (lazy imports, the peers' first pool) and
is the only one whose memory is sampled, so reading /proc never slows a timed one.
A cold-start workload (startup) instead gets a new process for every repetition: each
timed call is then the first one in a process that has imported the library and
built its input, and nothing else.
"""

from __future__ import annotations

import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from . import _memory, _peers, _workloads

# Sampling every 10 ms costs the harness about 1 ms of CPU per sample (a /proc scan plus
# one smaps_rollup per process): frequent enough to catch a worker that lives 20 ms.
SAMPLE_INTERVAL = 0.01

# Repetitions timed per measurement when the caller does not say.
REPEAT = {"tiny": 2, "quick": 3, "full": 5}

# A measurement that takes longer than this is stopped and reported as timed out: long
# enough for ProcessPoolExecutor on 2 GiB (about 7 s a call), short enough to notice a hang.
TIMEOUT = {"tiny": 60.0, "quick": 60.0, "full": 180.0}


# The implementations whose scaling a quick run measures: batch's own backends.
SMALL_SCALING = ("serial", "fork", "thread")


class MeasurementFailed(Exception):
    """A benchmarked process reported an error, crashed or ran out of time."""


def plan(size: str, workloads, implementations, workers: int, pythons=None) -> list[dict]:
    """Every measurement to make, in order: the specs `measure` takes.

    With several interpreters (`pythons`, probed), each measurement is made on each of
    them in turn before the next one, so rows compared side by side were measured
    minutes apart at most, under the same load.
    """
    out = []
    for name in workloads:
        wl = _workloads.WORKLOADS[name]
        keys = list(wl.implementations or
                    sorted(implementations, key=lambda k: _peers.DEFAULT.index(k)))
        if name == "scaling" and size != "full":
            keys = [k for k in keys if k in SMALL_SCALING]  # keeps --quick under a minute
        counts = range(1, workers + 1) if name == "scaling" else (workers,)
        for count in counts:
            for key in keys:
                if name == "scaling" and key == "serial" and count != 1:
                    continue  # serial does not depend on the worker count
                spec = {"workload": name, "implementation": key, "size": size,
                        "workers": 1 if key in _peers.SINGLE else count}
                for py in pythons or [None]:
                    out.append(spec if py is None else
                               dict(spec, python=py["label"], executable=py["path"]))
    return out


def measure(spec: dict, *, repeat: int, timeout: float, memory: bool = True,
            tick=lambda: None, modules: dict | None = None) -> dict:
    """One row: run spec's workload on spec's implementation, `repeat` timed times.

    `modules` is what spec's interpreter has installed (its probe), when that is not
    this one.
    """
    wl = _workloads.WORKLOADS[spec["workload"]]
    impl = _peers.IMPLEMENTATIONS[spec["implementation"]]
    row = dict(spec, label=impl.label, times=[], peak_bytes=None, note=None, error=None)
    installed = impl.installed() if modules is None or impl.module is None \
        else bool(modules.get(impl.module))
    if impl.key in wl.skip:
        row["note"] = wl.skip[impl.key]
    elif not installed:
        row["note"] = impl.missing or f"not installed (pip install {impl.module})"
    if row["note"]:
        for _ in planned_runs(spec, repeat, memory):
            tick()
        return row
    started = time.monotonic()
    env = child_env(wl.env)
    # A cold-start workload gets a new process for every run, others one for all.
    runs = planned_runs(spec, repeat, memory)
    sessions = [[run] for run in runs] if wl.fresh_per_rep else [runs]
    try:
        for session in sessions:
            _session(spec, env, session, row, timeout, tick)
    except MeasurementFailed as exc:
        row["error"] = str(exc)
    row["wall"] = round(time.monotonic() - started, 2)
    if row["times"]:
        row.update(median=statistics.median(row["times"]), min=min(row["times"]),
                   max=max(row["times"]))
    return row


def planned_runs(spec: dict, repeat: int, memory: bool = True) -> list:
    """None for the untimed run whose memory is sampled, then 0 .. repeat-1 timed ones."""
    if _workloads.WORKLOADS[spec["workload"]].fresh_per_rep and spec["size"] != "full":
        memory = False  # one process more per row for a 2-item call: kept out of --quick
    return [None] * memory + list(range(repeat))


def _session(spec, env, runs, row, timeout, tick) -> None:
    """Start one benchmarked process and make `runs` in it (None: the memory run)."""
    child = _Child(spec, env)
    try:
        ready = child.receive(timeout)
        row.update(items=ready["items"], input_bytes=ready["input_bytes"],
                   result_bytes=ready["result_bytes"])
        for run in runs:
            sampler = None
            if run is None and _memory.available():
                sampler = _memory.PeakSampler(child.pid)
                sampler.sample()
            child.send("run")
            done = child.receive(timeout, sampler)
            row["digest"] = done["digest"]
            row["gil_enabled"] = done.get("gil_enabled")
            if sampler is not None:
                row["peak_bytes"] = sampler.peak
                if _workloads.WORKLOADS[spec["workload"]].programs:
                    row["peak_below_bytes"] = sampler.peak_below
            if run is not None:
                row["times"].append(done["seconds"])
            tick()
    except KeyboardInterrupt:
        child.kill()  # do not wait for a 7-second call to finish
        raise
    finally:
        child.close()


def child_env(extra: dict) -> dict:
    """The environment of a benchmarked process: this one's, importing this very batch."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(
        [_package_root()] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _package_root() -> str:
    """The folder holding the `batch` package, so the child imports this very copy."""
    import batch
    return os.path.dirname(os.path.dirname(os.path.abspath(batch.__file__)))


class _Child:
    """A benchmarked process: commands on its stdin, JSON lines back on a pipe of its own."""

    def __init__(self, spec: dict, env: dict):
        r, w = os.pipe()
        self._fd = r
        self._buf = b""
        self._log = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                [spec.get("executable", sys.executable), "-m", "batch._bench._child",
                 json.dumps(dict(spec, fd=w))],
                stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT,
                pass_fds=(w,), env=env, start_new_session=True)  # Ctrl-C reaches the harness only
        except BaseException:
            os.close(r)
            self._fd = -1
            self._log.close()
            raise
        finally:
            os.close(w)
        self.pid = self.proc.pid

    def send(self, command: str) -> None:
        try:
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise MeasurementFailed(self._died()) from None

    def receive(self, timeout: float, sampler=None) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise MeasurementFailed(f"timed out: no answer in {timeout:.0f} s")
            wait = min(left, SAMPLE_INTERVAL) if sampler is not None else left
            readable, _, _ = select.select([self._fd], [], [], wait)
            if sampler is not None:
                sampler.sample()
            if readable:
                data = os.read(self._fd, 65536)
                if not data:
                    raise MeasurementFailed(self._died())
                self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        message = json.loads(line)
        if "error" in message:
            raise MeasurementFailed(message["error"])
        return message

    def _died(self) -> str:
        code = self.proc.wait()
        self._log.seek(0)
        tail = self._log.read().decode(errors="replace").strip().splitlines()[-1:]
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return f"the benchmark process {how}" + (f": {tail[0]}" if tail else "")

    def kill(self) -> None:
        """Stop the process and everything in its process group, at once."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _kill_leftovers(self) -> None:
        """Kill what the process left running in its session (a pool's orphaned workers).

        Every process it started is in the session it opened (batch's workers change only
        their process group), so none outlives the measurement to run beside the next.
        """
        if not os.path.isdir("/proc"):
            return
        for pid, _, sid in _memory.processes():
            if sid == self.pid and pid != self.pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        """Ask the process to quit; kill its group if it does not within a few seconds."""
        try:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait()
            self._kill_leftovers()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._log.close()
