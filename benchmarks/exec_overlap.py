"""Question: does spawning from two threads overlap, and with which call?

os.posix_spawn holds the GIL until the child's execve (CLONE_VFORK); glibc's
posix_spawn called through ctypes releases it. Each case spawns 2,000 `true` with
/dev/null stdin, stdout/stderr pipes and its own process group, each thread spawning
and reaping one at a time, against `xargs -P 2 -n 1 true`, in random order per
repetition; the median of 3 is printed. The figures quoted in batch/_exec/_libc_spawn.py
came from this script (Linux, glibc). Uses libc through ctypes directly, as a probe;
batch's own use is batch/_exec/_libc_spawn.py.

    python -m benchmarks.exec_overlap
"""

import ctypes
import os
import random
import statistics
import subprocess
import threading
import time

N = 2000
TRUE = "/usr/bin/true" if os.path.exists("/usr/bin/true") else "/bin/true"


def _libc_case():
    libc = ctypes.CDLL(None, use_errno=True)
    argv = (ctypes.c_char_p * 2)(TRUE.encode(), None)
    items = [f"{k}={v}".encode() for k, v in os.environ.items()]
    envp = (ctypes.c_char_p * (len(items) + 1))(*items, None)

    def spawn():
        pid = ctypes.c_int()
        actions = ctypes.create_string_buffer(512)
        libc.posix_spawn_file_actions_init(actions)
        libc.posix_spawn_file_actions_addopen(actions, 0, os.devnull.encode(), os.O_RDONLY, 0)
        r, w = os.pipe()
        r2, w2 = os.pipe()
        libc.posix_spawn_file_actions_adddup2(actions, w, 1)
        libc.posix_spawn_file_actions_adddup2(actions, w2, 2)
        attrs = ctypes.create_string_buffer(1024)
        libc.posix_spawnattr_init(attrs)
        libc.posix_spawnattr_setpgroup(attrs, 0)
        libc.posix_spawnattr_setflags(attrs, ctypes.c_short(0x02))  # POSIX_SPAWN_SETPGROUP
        err = libc.posix_spawn(ctypes.byref(pid), TRUE.encode(), actions, attrs, argv, envp)
        libc.posix_spawn_file_actions_destroy(actions)
        libc.posix_spawnattr_destroy(attrs)
        os.close(w)
        os.close(w2)
        if err:
            raise OSError(err, os.strerror(err))
        return pid.value, (r, r2)
    return spawn


def _os_spawn():
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.posix_spawn(TRUE, ["true"], os.environ, setpgroup=0, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, w2, 2)])
    os.close(w)
    os.close(w2)
    return pid, (r, r2)


def _threads(spawn, threads: int) -> float:
    def loop(k):
        for _ in range(k):
            pid, fds = spawn()
            os.waitpid(pid, 0)
            for fd in fds:
                os.close(fd)
    t0 = time.perf_counter()
    pool = [threading.Thread(target=loop, args=(N // threads,)) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - t0


def _xargs() -> float:
    items = b"".join(b"%d\n" % i for i in range(N))
    t0 = time.perf_counter()
    subprocess.run(["xargs", "-P", "2", "-n", "1", "true"], input=items, check=True)
    return time.perf_counter() - t0


def main(reps: int = 3) -> None:
    libc_spawn = _libc_case()
    cases = {"os.posix_spawn, 1 thread": lambda: _threads(_os_spawn, 1),
             "os.posix_spawn, 2 threads": lambda: _threads(_os_spawn, 2),
             "libc posix_spawn, 2 threads": lambda: _threads(libc_spawn, 2),
             "xargs -P 2": _xargs}
    print("load average before", os.getloadavg())
    times: dict = {name: [] for name in cases}
    for _ in range(reps):
        for name in random.sample(list(cases), len(cases)):
            times[name].append(cases[name]())
    print("load average after ", os.getloadavg())
    for name, got in times.items():
        print(f"{name:30} {statistics.median(got):.3f} s  ({', '.join(f'{t:.2f}' for t in got)})")


if __name__ == "__main__":
    main()
