"""Question: which way should a big result array get from a worker to the coordinator?

Issue 11's design measurement, on raw primitives (no batch code on the timed path except
the `pipe` row, which is the engine itself). 64 results of 16 MiB by default, made by
`np.full` in 2 forked workers, every variant in the same process, interleaved,
median of --repeat:

    serial      [np.full(...) for i in range(n)] in this process: the loop to beat
    pipe        batch.pmap(..., backend="fork") as the engine stands
    vm_readv    the worker sends (address, length); the coordinator process_vm_readv's
                the bytes into a fresh buffer (MAP_POPULATE, as the pipe path allocates)
    vm_readv_lazy  the same into a buffer left to fault inside process_vm_readv
    memfd       the worker copies its array into a memfd it maps MAP_SHARED; the
                coordinator opens /proc/<pid>/fd/<n> and maps it: no copy on its side
    memfd_fill  the worker's function writes straight into the memfd (what map_blocks
                and an `out=`-aware function do): shared-memory faults, no copy at all

"read" is the coordinator summing every result afterwards: the cost of faulting
shared pages into its own page tables, which the memfd rows defer to the caller.

    python benchmarks/result_transports.py [--n 64] [--mib 16] [--repeat 5]
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import selectors
import statistics
import struct
import time

import numpy as np

libc = ctypes.CDLL(None, use_errno=True)


class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


libc.process_vm_readv.restype = ctypes.c_ssize_t
libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.POINTER(IOVec), ctypes.c_ulong,
                                  ctypes.POINTER(IOVec), ctypes.c_ulong, ctypes.c_ulong]
MSG = struct.Struct("<qqq")  # index, a, b


def _address(buf) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def worker(kind, indices, n_items, w, ack):
    held = None
    for i in indices:
        if kind == "memfd_fill":
            fd = os.memfd_create("r", os.MFD_CLOEXEC)
            os.ftruncate(fd, n_items * 8)
            mm = mmap.mmap(fd, n_items * 8)
            np.frombuffer(mm, dtype=np.float64)[:] = i  # np.full's work, in place
            held = (fd, mm)
            os.write(w, MSG.pack(i, fd, 0))
        else:
            a = np.full(n_items, i, dtype=np.float64)
            if kind.startswith("vm_readv"):
                held = a
                os.write(w, MSG.pack(i, a.ctypes.data, a.nbytes))
            else:
                fd = os.memfd_create("r", os.MFD_CLOEXEC)
                os.ftruncate(fd, a.nbytes)
                mm = mmap.mmap(fd, a.nbytes)
                np.frombuffer(mm, dtype=np.float64)[:] = a
                del a
                held = (fd, mm)
                os.write(w, MSG.pack(i, fd, 0))
        os.read(ack, 1)  # the coordinator has it: let go
        if isinstance(held, tuple):
            held[1].close()
            os.close(held[0])
        held = None


def forked(kind, n, n_items, workers=2):
    nbytes = n_items * 8
    procs = []
    for k in range(workers):
        r, w = os.pipe()
        ar, aw = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                os.close(aw)
                worker(kind, range(k, n, workers), n_items, w, ar)
            finally:
                os._exit(0)
        os.close(w)
        os.close(ar)
        procs.append((pid, r, aw))
    sel = selectors.DefaultSelector()
    for p in procs:
        sel.register(p[1], selectors.EVENT_READ, p)
    results = [None] * n
    left = n
    while left:
        for key, _ in sel.select():
            pid, r, aw = key.data
            raw = os.read(r, MSG.size)
            if not raw:  # that worker is done
                sel.unregister(r)
                continue
            i, a, b = MSG.unpack(raw)
            if kind.startswith("vm_readv"):
                flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                if kind == "vm_readv":
                    flags |= mmap.MAP_POPULATE
                buf = mmap.mmap(-1, nbytes, flags=flags)
                local = IOVec(_address(buf), nbytes)
                remote = IOVec(a, b)
                got = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote),
                                            1, 0)
                assert got == nbytes, (got, ctypes.get_errno())
            else:
                fd = os.open(f"/proc/{pid}/fd/{a}", os.O_RDWR)
                buf = mmap.mmap(fd, nbytes)
                os.close(fd)
            results[i] = np.frombuffer(buf, dtype=np.float64)
            os.write(aw, b"k")
            left -= 1
    for pid, r, aw in procs:
        os.close(r)
        os.close(aw)
        os.waitpid(pid, 0)
    sel.close()
    return results


def run(kind, n, n_items):
    if kind == "serial":
        return [np.full(n_items, i, dtype=np.float64) for i in range(n)]
    if kind == "pipe":
        import batch
        return batch.pmap(lambda i: np.full(n_items, i, dtype=np.float64), range(n),
                          workers=2, backend="fork")
    return forked(kind, n, n_items)


KINDS = ["serial", "pipe", "vm_readv", "vm_readv_lazy", "memfd", "memfd_fill"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--mib", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n_items = args.mib * (1 << 20) // 8
    times = {k: [] for k in KINDS}
    reads = {k: [] for k in KINDS}
    print(f"load average before: {os.getloadavg()}")
    for _ in range(args.repeat):
        for kind in KINDS:
            t0 = time.perf_counter()
            res = run(kind, args.n, n_items)
            t1 = time.perf_counter()
            total = sum(float(a.sum()) for a in res)
            t2 = time.perf_counter()
            assert total == n_items * sum(range(args.n)), kind
            assert all(a[0] == i and a[-1] == i for i, a in enumerate(res)), kind
            del res
            times[kind].append(t1 - t0)
            reads[kind].append(t2 - t1)
    base = statistics.median(times["serial"])
    print(f"{args.n} results of {args.mib} MiB, 2 workers, median of {args.repeat}")
    print(f"{'variant':15} {'median s':>9} {'min s':>7} {'vs serial':>9} {'read s':>7}")
    for kind in KINDS:
        med = statistics.median(times[kind])
        print(f"{kind:15} {med:9.3f} {min(times[kind]):7.3f} {base / med:8.2f}x "
              f"{statistics.median(reads[kind]):7.3f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
