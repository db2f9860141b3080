"""The loop of `batch run`: tasks to the engine, envelopes back, folded in chunk order.

    plan ─► input.tasks ─► (minus the checkpoint's chunks) ─► _coordinator.run(backend)
                                                                    │ Outcomes, any order
                            joblog row ◄── checkpoint save ◄── progress ◄─┘
                                                                    │
    checkpoint's saved chunks ──────────────────────────────────────┤
                                                                    ▼
             _combine.in_order ─► relocate(partial, items before it) ─► reducer.add ─► finish

Only the partials that finished ahead of a slower chunk are held; the coordinator's
window bounds them (none when a checkpoint removed chunks from the plan: the window
counts chunk indices from 0 and would wait forever for a chunk that never runs).
"""

from __future__ import annotations

import contextlib
import itertools

from ... import _coordinator, _progress, backends
from ..._combine import NOTHING, in_order
from ..._pool import WINDOW_PER_WORKER
from .._controls import Controls
from .._exits import ChunksFailed, UsageError

_SAVED, _FAILED = object(), object()

# What the progress bar counts, by input kind: an array's rows (along axis 0), lines, files.
UNITS = {"array": "rows", "lines": "lines", "files": "files"}


def execute(inp, plan, mapper, reducer, ctl: Controls, *, checkpoint=None, joblog=None,
            desc: str = "batch"):
    """The reduced result of `mapper` over every chunk of `plan`."""
    saved = checkpoint.finished() if checkpoint is not None else set()
    tasks = inp.tasks(plan, mapper.body)
    feedback = getattr(tasks, "feedback", None)  # streamed input sizes chunks by timing
    if saved:
        tasks = _skip(tasks, saved, checkpoint)
    bar = _progress.bar(ctl.progress, inp.total, desc, unit=UNITS.get(inp.kind, "items"))
    failures: list = []
    ran = 0
    estimate = _TotalEstimate(inp, bar)

    def finished(outcomes):
        nonlocal ran
        for out in outcomes:
            ran += 1
            env = out.result if out.error is None else None
            if joblog is not None:
                joblog.row(out, env)
            if out.error is not None:
                if not ctl.keep_going:
                    raise out.error
                failures.append(out.error)
                yield out.task.index, (out.task.index, _FAILED)
                continue
            if checkpoint is not None:
                checkpoint.save(out.task, env)
            bar.update(env[0])
            if feedback is not None:
                feedback(env[0], out.compute)
            estimate.add(out.task, env[0])
            yield out.task.index, (out.task.index, env)

    window = None if saved else WINDOW_PER_WORKER * ctl.workers
    outcomes = _outcomes(ctl, tasks, window)
    acc = reducer.start() if reducer.start is not None else NOTHING
    offset = 0
    try:
        with contextlib.closing(outcomes):
            pairs = itertools.chain(((i, (i, _SAVED)) for i in sorted(saved)),
                                    finished(outcomes))
            for index, env in in_order(pairs):  # values are (index, envelope)
                if env is _SAVED:
                    env = checkpoint.load(index)
                    bar.update(env[0])
                if env is _FAILED or failures:
                    continue  # the result will not be written: stop folding
                if len(env) == 2:
                    partial = env[1]
                    if mapper.relocate is not None:
                        partial = mapper.relocate(partial, offset)
                    acc = partial if acc is NOTHING else reducer.add(acc, partial)
                offset += env[0]
    finally:
        bar.close()
    if failures:
        raise ChunksFailed(failures, ran + len(saved))
    if acc is NOTHING:
        if reducer.empty is None:
            raise UsageError(f"the input has no items, and {reducer.name} of nothing is "
                             f"undefined")
        return reducer.empty()
    return reducer.finish(acc)


def _outcomes(ctl: Controls, tasks, window):
    # The backend is created on the first next(), inside the generator that closes it.
    backend = backends.create(ctl.backend, workers=ctl.workers, **ctl.options)
    yield from _coordinator.run(backend, tasks, workers=ctl.workers, timeout=ctl.timeout,
                                retries=ctl.retries, window=window)


def _skip(tasks, saved: set, checkpoint):
    for task in tasks:
        if task.index in saved:
            checkpoint.check(task)
        else:
            yield task


class _TotalEstimate:
    """A text file's line count, guessed from the bytes read so far, for the bar's ETA."""

    def __init__(self, inp, bar):
        self.active = inp.total is None and hasattr(bar, "total") and hasattr(inp, "size")
        self.bar, self.size = bar, getattr(inp, "size", 0)
        self.bytes = self.items = 0

    def add(self, task, count: int) -> None:
        if not self.active or not isinstance(task.data, tuple):
            return
        self.bytes += task.data[2] - task.data[1]
        self.items += count
        if self.bytes:
            self.bar.total = max(self.bar.n, round(self.items * self.size / self.bytes))
