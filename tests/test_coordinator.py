"""The coordinator loop on its own: windows, numbering, closing."""

from __future__ import annotations

import contextlib
import time

import pytest

from batch import _coordinator, backends
from batch.backends._base import Task


def tasks(indices, seconds=0.0):
    def body(chunk):
        time.sleep(seconds)
        return chunk
    return [Task(i, range(i, i + 1), 1, body, [i]) for i in indices]


@pytest.mark.parametrize("kind", ["fork", "thread", "serial"])
def test_window_with_chunk_numbers_that_do_not_start_at_zero(kind):
    backend = backends.create(kind, workers=2)
    run = _coordinator.run(backend, tasks([3, 4, 7, 8, 9, 15, 16, 17, 18, 19]), workers=2,
                           window=4)
    with contextlib.closing(run):
        got = sorted(out.task.index for out in run)
    assert got == [3, 4, 7, 8, 9, 15, 16, 17, 18, 19]


def test_window_bounds_how_far_ahead_chunks_start():
    started = []

    def body(chunk):
        return chunk

    class Recording(list):
        def __iter__(self):
            for task in super().__iter__():
                started.append(task.index)
                yield task

    slow = Task(0, range(1), 1, lambda c: time.sleep(0.5), [0])
    rest = [Task(i, range(i, i + 1), 1, body, [i]) for i in range(1, 20)]
    backend = backends.create("thread", workers=2)
    run = _coordinator.run(backend, Recording([slow] + rest), workers=2, window=3)
    with contextlib.closing(run):
        first = next(run)
    # chunk 0 is still running: nothing past chunk 0 + 3 may have been pulled and started
    assert first.task.index in (1, 2) and max(started) <= 3


def test_closing_a_run_that_never_started_leaves_nothing_open():
    backend = backends.create("fork", workers=2)
    run = _coordinator.run(backend, tasks([0, 1]), workers=2)
    run.close()
    backend.close()  # what Pool does: close() is safe to call again
    backend.close()
