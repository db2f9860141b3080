"""Starting a program: os.posix_spawn, in a process group of its own, never a shell.

Why posix_spawn and not fork + exec. A coordinator may hold a big array (batch's whole
point); measured here with `python -m benchmarks.exec_spawn --gib 2 --jobs 300` (2 CPUs,
Linux 6.18, glibc 2.36, Python 3.11; each figure the best of 3 runs of 300 `true`):

    coordinator holding   fork+exec     posix_spawn   subprocess.run
    0 GiB                 4011 us/job   1631 us/job   1657 us/job
    2 GiB (touched)       5598 us/job   1453 us/job   1562 us/job

os.fork copies the coordinator's page tables and write-protects every page before the
child can exec, so its cost grows with the coordinator's memory and every page the
coordinator writes next faults. glibc's posix_spawn is clone(CLONE_VM | CLONE_VFORK): the
child borrows the address space until exec, whatever its size, and reports an exec
failure (ENOENT, EACCES) to the caller as an OSError. subprocess uses vfork too (hence
its similar figure) but adds a Popen object and an error pipe per job.

os.posix_spawn cannot change the working directory (no addchdir action in Python), so a
job with `cwd` goes through subprocess.Popen, vfork-based as well, with its own group.

What a job gets: argv exactly as given (str with surrogate escapes, or bytes); stdin,
stdout and stderr dup2'ed from the caller's pipe ends (every other descriptor is
close-on-exec, as os.pipe makes them); SIGPIPE, SIGXFSZ, SIGINT and SIGTERM at their
defaults and no signal blocked (Python ignores SIGPIPE, and the runner spawns with
SIGINT/SIGTERM blocked so that no handler runs between the spawn and recording the pid;
not for a `cwd` job: a Popen child would inherit the blocked mask).

A spawn blocks its caller until the child's execve (CLONE_VFORK): 0.26-0.28 ms a job on a
quiet machine, 0.9-1.4 ms at load 4. The runner therefore spawns on two threads
(_runner.py has the figures), through _libc_spawn where it can, which releases the GIL.

That a job dies with its coordinator, even one killed by SIGKILL, is _lifeline.py's job:
PR_SET_PDEATHSIG would need code between fork and exec, which posix_spawn has not.
"""

from __future__ import annotations

import os
import signal
import subprocess

_DEFAULTS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ", "SIGINT",
                                                        "SIGTERM") if hasattr(signal, name))


class NotRunnable(Exception):
    """The program cannot be found or executed: the message names it."""


def find_program(program: str, *, cwd=None, env=None) -> str:
    """The path `program` runs as, or NotRunnable saying why it cannot run."""
    if "/" in program:
        path = os.path.join(cwd, program) if cwd else program
        if not os.path.exists(path):
            raise NotRunnable(f"{program}: no such file")
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise NotRunnable(f"{program}: not executable")
        return program
    search = (env if env is not None else os.environ).get("PATH", os.defpath)
    found = _which(program, search)
    if found is None:
        raise NotRunnable(f"{program}: command not found")
    return found


def _which(program: str, path: str) -> str | None:
    """shutil.which's search of PATH (shutil, which loads zlib, bz2 and lzma, is 2-3 ms
    of every start-up): the first executable file of that name, each folder once."""
    for folder in dict.fromkeys(path.split(os.pathsep)):
        candidate = os.path.join(folder, program)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


_found: dict = {}


def _resolve(program, env) -> str:
    """The program's path, searched in PATH once per run rather than per job:
    posix_spawnp would try an execve in every PATH folder before the right one, each
    while the coordinator waits (13 folders here)."""
    path = env.get("PATH", os.defpath)
    key = (program, path)
    found = _found.get(key)
    if found is None:
        if "/" in os.fsdecode(program):
            return program
        found = _which(os.fsdecode(program), path)
        if found is None:
            raise FileNotFoundError(program)
        if len(_found) > 256:
            _found.clear()
        _found[key] = found
    return found


class Launch:
    """Starting the jobs of a run without a cwd: launch(argv, stdin, stdout, stderr) ->
    pid. stdin None is /dev/null; stdout/stderr None are the caller's own. An exec
    failure is raised as NotRunnable. The pid leads a new process group.

    Through libc where _libc_spawn has it (envp and file actions built once a run), else
    os.posix_spawn (which encodes the environment again on every call). The error
    translation is inline, not a context manager: this runs once a job."""

    def __init__(self, env):
        from . import _libc_spawn
        self._env = env
        self._libc = _libc_spawn.Launcher(env, _DEFAULTS) if _libc_spawn.available() else None

    def __call__(self, argv, stdin, stdout, stderr) -> int:
        try:
            path = _resolve(argv[0], self._env)
            if self._libc is not None:
                return self._libc(path, argv, stdin, stdout, stderr)
            return os.posix_spawn(path, argv, self._env,
                                  file_actions=_actions(stdin, stdout, stderr),
                                  setpgroup=0, setsigdef=_DEFAULTS, setsigmask=())
        except OSError as exc:
            raise _not_runnable(argv[0], exc) from exc

    def close(self) -> None:
        if self._libc is not None:
            self._libc.close()
            self._libc = None


def _actions(stdin, stdout, stderr) -> list:
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0) if stdin is None
               else (os.POSIX_SPAWN_DUP2, stdin, 0)]
    if stdout is not None:
        actions.append((os.POSIX_SPAWN_DUP2, stdout, 1))
    if stderr is not None:
        actions.append((os.POSIX_SPAWN_DUP2, stderr, 2))
    return actions


def _not_runnable(program, exc: OSError) -> NotRunnable:
    """The spawn's OSError, for a program that cannot start, as one NotRunnable naming it."""
    name = os.fsdecode(program)
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return NotRunnable(f"{name}: command not found")
    if isinstance(exc, PermissionError):
        return NotRunnable(f"{name}: not executable")
    return NotRunnable(f"{name}: {exc.strerror or exc}")


def spawn_in(argv, *, stdin: int | None, stdout: int | None, stderr: int | None, env,
             cwd) -> tuple[int, object]:
    """Start argv in folder `cwd` (posix_spawn has no chdir action): (pid, keep), where
    `keep`, the Popen, must live until the pid is reaped. Otherwise as Launch."""
    try:
        # process_group= is Python 3.11's; start_new_session would also detach the job
        # from the terminal, which GNU parallel does not do.
        kw = {"process_group": 0} if _HAS_PROCESS_GROUP else {"preexec_fn": os.setpgrp}
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL if stdin is None else stdin,
                                stdout=stdout, stderr=stderr, env=env, cwd=cwd, **kw)
    except (FileNotFoundError, NotADirectoryError) as exc:
        where = "no such folder" if exc.filename == cwd else "command not found"
        raise NotRunnable(f"{os.fsdecode(exc.filename or argv[0])}: {where}") from exc
    except PermissionError as exc:
        raise NotRunnable(f"{os.fsdecode(argv[0])}: not executable") from exc
    return proc.pid, proc


_HAS_PROCESS_GROUP = "process_group" in subprocess.Popen.__init__.__code__.co_varnames


def reaped(keep, status: int) -> None:
    """Tell the Popen (if any) its pid was reaped, so that it never waits for it again:
    subprocess would otherwise waitpid() a recycled pid from its cleanup list."""
    if keep is not None:
        keep.returncode = os.waitstatus_to_exitcode(status)


def pidfd(pid: int) -> int:
    """A descriptor that turns readable when `pid` exits (Linux 5.3+), or -1: the runner
    then polls instead."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
        return -1


def kill_rest_of_group(pgid: int) -> None:
    """SIGKILL what is left of a stopped job's process group (a grandchild that ignored
    SIGTERM). killpg only: once the group is empty its number matches no process, while
    kill() of the pid could reach a new process that reused it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:  # ESRCH: nothing left, the usual case
        pass
