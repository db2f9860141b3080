"""Question: from a coordinator that holds a big array, which way of starting a program is
faster, fork + exec or os.posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK))?

fork copies the coordinator's page tables (and write-protects every page for copy-on-write)
before the child can exec, so its cost grows with the coordinator's resident memory;
posix_spawn shares the address space until exec and costs the same whatever that memory.
batch/_exec/_spawn.py chose from these numbers.

    python -m benchmarks.exec_spawn [--gib 2] [--jobs 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import time

import numpy as np

TRUE = shutil.which("true") or "/bin/true"


def fork_exec(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            try:
                os.execv(TRUE, [TRUE])
            finally:
                os._exit(127)
        os.waitpid(pid, 0)
    return (time.perf_counter() - t0) / n


def posix_spawn(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        pid = os.posix_spawn(TRUE, [TRUE], os.environ, setpgroup=0)
        os.waitpid(pid, 0)
    return (time.perf_counter() - t0) / n


def popen(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run([TRUE], check=True)
    return (time.perf_counter() - t0) / n


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=2.0, help="array held by the coordinator")
    ap.add_argument("--jobs", type=int, default=200)
    a = ap.parse_args(argv)
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}")
    ways = {"fork+exec": fork_exec, "posix_spawn": posix_spawn, "subprocess.run": popen}
    for gib in (0, a.gib):
        big = np.ones(int(gib * (1 << 30)) // 8) if gib else None  # allocated and touched
        row = {name: min(fn(a.jobs) for _ in range(3)) for name, fn in ways.items()}
        print(f"coordinator holding {gib:g} GiB: " + ", ".join(
            f"{name} {sec * 1e6:.0f} us/job" for name, sec in row.items()))
        del big


if __name__ == "__main__":
    main()
