"""glibc's posix_spawn called through ctypes, so that the GIL is released while it runs.

Why. os.posix_spawn holds the GIL for the whole call (CPython 3.11: no
Py_BEGIN_ALLOW_THREADS around it; a thread blocked in it stopped the main thread's loop,
tested with a file action that opens a FIFO), and the call lasts until the child's
execve (CLONE_VFORK): 1.1-1.4 ms a job on this loaded 2-core machine, 60-70% of
`seq 2000 | batch exec -j 2 true` under cProfile. Every spawn was therefore serialised
through the coordinator. Measured side by side (python -m benchmarks.exec_overlap:
2,000 `true`, stdout/stderr pipes, own group, each thread spawning and reaping in turn,
medians of 3), two runs:

                                    load 3.1-4.4    load 3.4
    os.posix_spawn, 1 thread        3.13 s          1.58 s
    os.posix_spawn, 2 threads       2.63 s          1.02 s   (one waits while one spawns)
    this, 2 threads                 1.54 s          0.87 s   (both may spawn at once)
    xargs -P 2                      2.90 s          1.26 s

ctypes releases the GIL around a foreign call, so two spawner threads (_spawner.py)
overlap their spawns. Only glibc on Linux (sizes and flag values below are glibc's);
elsewhere `available()` is False and the runner uses os.posix_spawn as before.
"""

from __future__ import annotations

import ctypes
import os
import sys

# glibc's <spawn.h>
_SETPGROUP, _SETSIGDEF, _SETSIGMASK = 0x02, 0x04, 0x08
# Opaque glibc types: posix_spawnattr_t is 336 bytes, posix_spawn_file_actions_t 80,
# sigset_t 128 (x86-64, aarch64); buffers of ample size hold them whatever the build.
_ATTR, _ACTIONS, _SIGSET = 1024, 512, 256

_libc = None


def available() -> bool:
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
            try:
                lib = ctypes.CDLL(None, use_errno=True)
                lib.posix_spawn.restype = ctypes.c_int
                _libc = lib
            except (OSError, AttributeError):
                _libc = False
    return bool(_libc)


class Attributes:
    """One posix_spawnattr_t for a whole run: own process group, `defaults` reset to
    SIG_DFL, no signal blocked. Read-only during a spawn, so shared by the threads."""

    def __init__(self, defaults):
        self._buf = ctypes.create_string_buffer(_ATTR)
        self._live = False
        _check(_libc.posix_spawnattr_init(self._buf))
        self._live = True
        sigdef, empty = ctypes.create_string_buffer(_SIGSET), ctypes.create_string_buffer(_SIGSET)
        _libc.sigemptyset(sigdef)
        _libc.sigemptyset(empty)
        for sig in defaults:
            _libc.sigaddset(sigdef, int(sig))
        _check(_libc.posix_spawnattr_setsigdefault(self._buf, sigdef))
        _check(_libc.posix_spawnattr_setsigmask(self._buf, empty))
        _check(_libc.posix_spawnattr_setpgroup(self._buf, 0))
        _check(_libc.posix_spawnattr_setflags(self._buf, ctypes.c_short(
            _SETPGROUP | _SETSIGDEF | _SETSIGMASK)))

    def close(self) -> None:
        if self._live:
            _libc.posix_spawnattr_destroy(self._buf)
            self._live = False


def environment(env) -> ctypes.Array:
    """envp for a run, built once (os.posix_spawn encoded the dict on every call)."""
    items = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
    return (ctypes.c_char_p * (len(items) + 1))(*items, None)


_DEVNULL = os.fsencode(os.devnull)


def spawn(path, argv, envp, attrs: Attributes, stdin, stdout, stderr) -> int:
    """posix_spawn(path, argv) with stdin (None: /dev/null), stdout, stderr dup2'ed;
    the pid, or OSError with the errno of the failed exec (glibc reports it)."""
    args = [os.fsencode(a) for a in argv]
    c_argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
    actions = ctypes.create_string_buffer(_ACTIONS)
    _check(_libc.posix_spawn_file_actions_init(actions))
    try:
        if stdin is None:
            _check(_libc.posix_spawn_file_actions_addopen(actions, 0, _DEVNULL, os.O_RDONLY, 0))
        else:
            _check(_libc.posix_spawn_file_actions_adddup2(actions, stdin, 0))
        for fd, target in ((stdout, 1), (stderr, 2)):
            if fd is not None:
                _check(_libc.posix_spawn_file_actions_adddup2(actions, fd, target))
        pid = ctypes.c_int()
        err = _libc.posix_spawn(ctypes.byref(pid), os.fsencode(path), actions, attrs._buf,
                                c_argv, envp)
    finally:
        _libc.posix_spawn_file_actions_destroy(actions)
    if err:
        raise OSError(err, os.strerror(err), os.fsdecode(path))
    return pid.value


class Launcher:
    """posix_spawn for a whole run, on the calling thread: the attributes, envp and the
    file actions are built once (a job's pipe ends get the lowest free descriptors, so a
    few (stdin, stdout, stderr) triples recur all run long), leaving per job the argv
    array and the call."""

    _KEEP = 64  # file-action sets kept: more triples than this means many workers

    def __init__(self, env, defaults):
        self._attrs = Attributes(defaults)
        self._envp = environment(env)
        self._actions: dict = {}
        self._pid = ctypes.c_int()

    def _actions_for(self, stdin, stdout, stderr):
        key = (stdin, stdout, stderr)
        actions = self._actions.get(key)
        if actions is None:
            if len(self._actions) >= self._KEEP:
                self._drop_actions()
            actions = ctypes.create_string_buffer(_ACTIONS)
            _check(_libc.posix_spawn_file_actions_init(actions))
            self._actions[key] = actions
            if stdin is None:
                _check(_libc.posix_spawn_file_actions_addopen(actions, 0, _DEVNULL,
                                                               os.O_RDONLY, 0))
            else:
                _check(_libc.posix_spawn_file_actions_adddup2(actions, stdin, 0))
            for fd, target in ((stdout, 1), (stderr, 2)):
                if fd is not None:
                    _check(_libc.posix_spawn_file_actions_adddup2(actions, fd, target))
        return actions

    def __call__(self, path, argv, stdin, stdout, stderr) -> int:
        """The pid of `argv` started as `path`, or OSError with the exec's errno."""
        args = [os.fsencode(a) for a in argv]
        c_argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
        err = _libc.posix_spawn(ctypes.byref(self._pid), os.fsencode(path),
                                self._actions_for(stdin, stdout, stderr), self._attrs._buf,
                                c_argv, self._envp)
        if err:
            raise OSError(err, os.strerror(err), os.fsdecode(path))
        return self._pid.value

    def _drop_actions(self) -> None:
        for actions in self._actions.values():
            _libc.posix_spawn_file_actions_destroy(actions)
        self._actions.clear()

    def close(self) -> None:
        self._drop_actions()
        self._attrs.close()


def _check(err: int) -> None:
    if err:
        raise OSError(err, os.strerror(err))
