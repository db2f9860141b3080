"""The benchmarked process: one workload on one implementation, several repetitions.

    harness (_runner)                          this process
    ─────────────────                          ────────────
    spawn: python -m batch._bench._child SPEC
                                               build the job (allocate the input)
           ◄──────── {"ready": ...} ────────── on the control fd
    "run\\n" on stdin ─────────────────────►   clock; run; clock; check the result
           ◄──────── {"seconds": ...} ──────
    ... (sampling the tree's memory meanwhile, on the memory repetition only)
    "quit\\n" ─────────────────────────────►   exit

A cold-start workload (startup) gets a new one of these processes for every repetition.
A process per measurement keeps the implementations from meeting: joblib's executor
threads never see a batch fork, a peer's leftover memory never counts against the next,
and the process holds nothing but the input when the clock starts. This process starts
no thread of its own, so batch forks from a single-threaded parent as it should.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    ctl = os.fdopen(spec["fd"], "w", buffering=1)

    def send(**message):
        ctl.write(json.dumps(message) + "\n")

    try:
        from . import _peers, _workloads
        workload = _workloads.WORKLOADS[spec["workload"]]
        job = workload.build(workload.sizes[spec["size"]])
        run = _peers.runner(spec["implementation"], job, spec["workers"])
        close = _peers.IMPLEMENTATIONS[spec["implementation"]].close
    except BaseException as exc:
        send(error=_one_line(exc), detail=traceback.format_exc())
        return 1
    send(ready=True, items=job.items, input_bytes=job.input_bytes,
         result_bytes=job.result_bytes)
    try:
        return _serve(run, job, send)
    finally:
        close()


def _serve(run, job, send) -> int:
    for command in sys.stdin:
        if command.strip() != "run":
            break
        if not _once(run, job, send):
            return 1
    return 0


def _once(run, job, send) -> bool:
    try:
        t0 = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - t0
        digest = job.check(result)
        del result
    except BaseException as exc:
        send(error=_one_line(exc), detail=traceback.format_exc())
        return False
    # Whether the GIL was on, asked after the run: a free-threaded build turns it back
    # on when an extension module without free-threading support is imported (a peer's).
    send(seconds=seconds, digest=digest,
         gil_enabled=getattr(sys, "_is_gil_enabled", lambda: True)())
    return True


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
