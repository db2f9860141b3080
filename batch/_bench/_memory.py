"""Peak memory of a whole process tree, sampled from outside it.

What counts is the memory the tree makes the machine spend, each page once:

    sum over the tree of (Pss - Pss_Shmem)    from /proc/<pid>/smaps_rollup
  + what shared memory grew by since the start: Shmem in /proc/meminfo

PSS splits a page shared by k processes into k parts, so the input a forked worker sees
through copy-on-write counts once, not once per worker as RSS would count it. Shared
memory is taken from the machine's Shmem instead of the processes' PSS, so a page counts
once whether zero, one or all workers have it mapped: joblib's memory-mapped copies in
/dev/shm, and a memfd (batch.map_blocks' output), which /dev/shm never shows. Like
/dev/shm's usage, which this replaced, it is the whole machine's: shared memory that
another program makes during a run counts too.

The sampler runs in the harness, never in the benchmarked process: a sampling thread
there would be alive while batch forks (the fork-with-threads hazard batch warns about),
and reading smaps_rollup costs the kernel a page-table walk that would be charged to the
run. For the same reason the harness samples only during one extra, untimed
repetition. A peak shorter than the sampling interval can be missed; every sample is a
lower bound of the true peak. Where /proc has no smaps_rollup (not Linux), memory is
reported as unknown rather than guessed.
"""

from __future__ import annotations

import os

SHM = "/dev/shm"


def available() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/smaps_rollup")


def processes():
    """(pid, parent pid, session id) of every process, from /proc/<pid>/stat."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # exited meanwhile
            continue
        # The command name (field 2) may hold spaces and parentheses: split after it.
        _, ppid, _, sid = stat[stat.rindex(b")") + 2:].split(None, 4)[:4]
        yield int(name), int(ppid), int(sid)


def tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid, _ in processes():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def private_pss(pid: int) -> int:
    """Pss minus Pss_Shmem of one process, in bytes; 0 if it has exited."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                key, _, rest = line.partition(b":")
                if key in (b"Pss", b"Pss_Shmem"):
                    fields[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        return 0
    return fields.get(b"Pss", 0) - fields.get(b"Pss_Shmem", 0)


def shm_used() -> int:
    """Bytes of shared memory in use on the machine (tmpfs, memfd, shared anonymous)."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"Shmem:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        st = os.statvfs(SHM)
    except OSError:
        return 0
    return (st.f_blocks - st.f_bfree) * st.f_frsize


class PeakSampler:
    """Call `sample()` as often as you like; `peak` is the largest total seen (bytes).

    `peak_below` is the largest total of the root's descendants alone, from the same
    samples: the programs a benchmarked process starts (`batch exec`, xargs, GNU
    parallel and their jobs), without the benchmarked process that waits for them.
    """

    def __init__(self, root: int):
        self.root = root
        self._shm_base = shm_used()
        self.peak = 0
        self.peak_below = 0
        self.samples = 0

    def sample(self) -> int:
        own, *below = (private_pss(pid) for pid in tree(self.root))
        shm = max(0, shm_used() - self._shm_base)
        total = own + sum(below) + shm
        self.peak = max(self.peak, total)
        self.peak_below = max(self.peak_below, sum(below) + shm)
        self.samples += 1
        return total
