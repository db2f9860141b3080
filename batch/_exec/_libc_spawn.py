"""glibc's posix_spawn called through ctypes: a run's attributes, envp and file actions
are built once (Launcher), where os.posix_spawn encodes the whole environment again on
every call.

History. This module first existed to release the GIL: os.posix_spawn holds it for the
whole call (CPython 3.11), which lasts until the child's execve (CLONE_VFORK), so two
spawner threads could not overlap their spawns through it, and through ctypes they
could. Measured then (python -m benchmarks.exec_overlap: 2,000 `true`, stdout/stderr
pipes, own group, each thread spawning and reaping in turn, medians of 3), two runs:

                                    load 3.1-4.4    load 3.4
    os.posix_spawn, 1 thread        3.13 s          1.58 s
    os.posix_spawn, 2 threads       2.63 s          1.02 s   (one waits while one spawns)
    this, 2 threads                 1.54 s          0.87 s   (both may spawn at once)
    xargs -P 2                      2.90 s          1.26 s

The runner still spawns on two threads (_runner.py: now one hand-off a job and nothing
back), so releasing the GIL still matters; the per-run set-up (Launcher: envp and file
actions built once) saves os.posix_spawn's encoding of the environment on every call.
A Launcher is shared by the threads: its pid is a local per call, and a cached set of
file actions is never destroyed while the run lasts. Only glibc on Linux (sizes and flag
values below are glibc's); elsewhere `available()` is False and _spawn.Launch uses
os.posix_spawn.
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

    def _actions_for(self, stdin, stdout, stderr):
        """(file actions, kept): a set not kept (the cache is full) is the caller's to
        destroy after its spawn; a kept one is never destroyed before close(), since
        another spawner thread may be using it."""
        key = (stdin, stdout, stderr)
        actions = self._actions.get(key)
        if actions is not None:
            return actions, True
        actions = ctypes.create_string_buffer(_ACTIONS)
        _check(_libc.posix_spawn_file_actions_init(actions))
        try:
            if stdin is None:
                _check(_libc.posix_spawn_file_actions_addopen(actions, 0, _DEVNULL,
                                                               os.O_RDONLY, 0))
            else:
                _check(_libc.posix_spawn_file_actions_adddup2(actions, stdin, 0))
            for fd, target in ((stdout, 1), (stderr, 2)):
                if fd is not None:
                    _check(_libc.posix_spawn_file_actions_adddup2(actions, fd, target))
        except BaseException:
            _libc.posix_spawn_file_actions_destroy(actions)
            raise
        if len(self._actions) >= self._KEEP:
            return actions, False
        self._actions[key] = actions
        return actions, True

    def __call__(self, path, argv, stdin, stdout, stderr) -> int:
        """The pid of `argv` started as `path`, or OSError with the exec's errno."""
        args = [os.fsencode(a) for a in argv]
        c_argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
        pid = ctypes.c_int()  # per call: two spawner threads may be in here at once
        actions, kept = self._actions_for(stdin, stdout, stderr)
        try:
            err = _libc.posix_spawn(ctypes.byref(pid), os.fsencode(path), actions,
                                    self._attrs._buf, c_argv, self._envp)
        finally:
            if not kept:
                _libc.posix_spawn_file_actions_destroy(actions)
        if err:
            raise OSError(err, os.strerror(err), os.fsdecode(path))
        return pid.value

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
