"""A whole benchmark run: plan, measure one by one with a progress bar, derive, judge.

The result is one plain dict (what --json writes, and what every report reads):

    {"machine": {...}, "settings": {...}, "rows": [...], "targets": [...]}
"""

from __future__ import annotations

import datetime
import os
import time

from .. import _progress
from . import _machine, _peers, _runner, _targets, _workloads


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run(*, size: str = "full", workloads=None, implementations=None, workers: int | None = None,
        repeat: int | None = None, timeout: float | None = None, progress: bool = True) -> dict:
    """Run the benchmarks; `workloads`/`implementations` None means all of them."""
    from .._cpus import usable_cpus
    workloads = list(workloads or _workloads.WORKLOADS)
    implementations = list(implementations or _peers.DEFAULT)
    if "big_results" in workloads and "pipe" not in workloads:
        workloads.append("pipe")  # big_results is reported as a fraction of it
    workers = workers or usable_cpus()
    repeat = repeat or _runner.REPEAT[size]
    timeout = timeout or _runner.TIMEOUT[size]
    specs = _runner.plan(size, workloads, implementations, workers)
    settings = {"size": size, "workers": workers, "repeat": repeat,
                "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "load_before": _load()}
    machine = _machine.describe()  # before: the source the measurements import
    t0 = time.monotonic()
    bar = _progress.bar(progress, sum(len(_runner.planned_runs(s, repeat)) for s in specs),
                        desc="batch bench", unit="runs")
    rows = []
    try:
        for spec in specs:
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{spec['workload']} / {spec['implementation']}")
            rows.append(_runner.measure(spec, repeat=repeat, timeout=timeout,
                                        tick=lambda: bar.update(1)))
    finally:
        bar.close()
    settings["seconds"] = round(time.monotonic() - t0, 1)
    settings["load_after"] = _load()
    after = _machine.source()
    if after != machine["batch_source"]:  # a shared checkout changed under the run
        settings["batch_source_after"] = after
    _targets.derive(rows)
    return {"machine": machine, "settings": settings, "rows": rows,
            "targets": _targets.judge(rows, workers),
            "questions": {name: _workloads.WORKLOADS[name].question for name in workloads}}
