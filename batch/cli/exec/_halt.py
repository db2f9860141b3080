"""--halt WHEN: GNU parallel's rules for stopping a run at failures.

    never            run every job, report the failures (the default)
    now,fail=N       at the Nth failure, stop the running jobs (SIGTERM, grace, SIGKILL)
    soon,fail=N      at the Nth failure, start no new job; the running ones finish
    now,fail=N%      as above once N% of the jobs finished so far failed (at least 3 jobs
    soon,fail=N%     finished, as GNU parallel asks)

The run then exits with the status of the job that made it halt (128 + its signal).
"""

from __future__ import annotations

import re

from .._exits import UsageError

_SPEC = re.compile(r"(now|soon),fail=(\d+(?:\.\d+)?)(%?)")
_PERCENT_MIN_JOBS = 3


class Halt:
    def __init__(self, text: str):
        self.when = None
        if text == "never":
            return
        m = _SPEC.fullmatch(text)
        if not m or float(m.group(2)) <= 0:
            raise UsageError(f"--halt {text!r}: expected never, now,fail=N, soon,fail=N "
                             f"or N% instead of N")
        self.when, self.limit, self.percent = m.group(1), float(m.group(2)), bool(m.group(3))
        self.failed = self.finished = 0

    def record(self, ok: bool) -> str | None:
        """Count one finished job; 'now' or 'soon' when the run must halt, else None."""
        if self.when is None:
            return None
        self.finished += 1
        self.failed += not ok
        if ok:
            return None
        if self.percent:
            hit = (self.finished >= _PERCENT_MIN_JOBS
                   and self.failed * 100 >= self.limit * self.finished)
        else:
            hit = self.failed >= self.limit
        return self.when if hit else None


def status_of(done) -> int:
    """The exit status of the job that made the run halt."""
    if done.signal is not None:
        return 128 + done.signal
    return done.exitcode if done.exitcode else 1
