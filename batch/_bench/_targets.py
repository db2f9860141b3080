"""Derived figures (speedup, items/s, bandwidth) and the issues' targets (5; 10 for batch
exec; 11 for big_results, map_blocks and big_input), judged per run.

Every ratio compares medians measured side by side in the same run. Targets are
reported, never asserted: a missed one is a finding for the engine, not a failed test.
"""

from __future__ import annotations

# (workload, what, other implementation or special, required, kind)
# kind "faster": other's time / fork's time >= required
#      "items":  fork's items/s / other's items/s >= required
#      "at_most": the measured figure <= required
_SPECS = [
    ("big_input", "fork vs ProcessPoolExecutor", "ppe", 15.0, "faster"),
    ("big_input", "fork vs multiprocessing.Pool", "mp_pool", 15.0, "faster"),
    ("big_input", "fork vs joblib", "joblib", 4.0, "faster"),
    ("big_input", "fork vs mpire", "mpire", 1.4, "faster"),
    ("big_input", "fork vs serial", "serial", 1.6, "faster"),
    ("big_input", "fork peak memory / input", "memory", 1.05, "at_most"),
    ("big_results", "fork vs serial", "serial", 1.0, "faster"),
    ("big_results", "fork vs ProcessPoolExecutor", "ppe", 10.0, "faster"),
    ("big_results", "fork vs mpire", "mpire", 3.5, "faster"),
    ("big_results", "fork bandwidth / raw pipe", "pipe", 0.6, "at_least"),
    ("map_blocks", "fork vs serial fn(whole array)", "serial", 1.6, "faster"),
    ("map_blocks", "fork vs batch thread", "thread", 0.95, "faster"),
    ("map_blocks", "fork peak memory / (input + output)", "memory", 1.05, "at_most"),
    ("tiny_tasks", "fork items/s vs multiprocessing.Pool", "mp_pool", 2.5, "items"),
    ("gil_bound", "fork vs serial", "serial", 1.8, "faster"),
    ("gil_bound", "fork time / best standard-library pool", "stdlib", 1.05, "at_most"),
    ("numpy_gil_release", "fork vs serial", "serial", 1.75, "faster"),
    ("numpy_gil_release", "thread vs serial", "thread_serial", 1.8, "faster"),
    ("startup", "fork time / fresh multiprocessing.Pool", "mp_pool_time", 0.6, "at_most"),
    ("startup_big", "fork time / fresh multiprocessing.Pool", "mp_pool_time", 0.6, "at_most"),
]

STDLIB = ("mp_pool", "ppe", "ppe_tuned")

# Issue 10's targets for `batch exec`: (workload, what, other, required, kind), batch exec
# being the measured side. "tree_mib": the peak of the programs' own process tree, in MiB.
_EXEC_SPECS = [
    ("exec_true", "batch exec jobs/s vs xargs -P", "xargs", 0.8, "items"),
    ("exec_true", "batch exec jobs/s vs GNU parallel", "parallel", 4.0, "items"),
    ("exec_echo", "batch exec jobs/s vs xargs -P", "xargs", 0.8, "items"),
    ("exec_echo", "batch exec jobs/s vs GNU parallel", "parallel", 4.0, "items"),
    ("exec_pipe", "batch exec --pipe vs one wc -l", "wc", 1.6, "faster"),
    ("exec_pipe", "batch exec --pipe: peak MiB of its tree", "tree_mib", 100.0, "at_most"),
]

# Figures measured beside issue 10's exec_pipe row, judged against the same 1.6x and
# 100 MiB but not issue targets: (workload, what, other, required, kind, measured side).
_EXEC_EXTRA = [
    ("exec_pipe", "added: --block 32M vs one wc -l", "wc", 1.6, "faster", "exec_32M"),
    ("exec_pipe", "added: --round-robin vs one wc -l", "wc", 1.6, "faster", "exec_rr"),
    ("exec_pipe", "added: < file vs wc -l < file", "wc_file", 1.6, "faster", "exec_file"),
    ("exec_pipe", "added: < file --block 32M vs wc -l < file", "wc_file", 1.6, "faster",
     "exec_file_32M"),
    ("exec_pipe", "added: < file --round-robin vs wc -l < file", "wc_file", 1.6, "faster",
     "exec_file_rr"),
    ("exec_pipe", "added: < file --block 32M: peak MiB of its tree", "tree_mib", 100.0,
     "at_most", "exec_file_32M"),
]

# The speedup baseline of a workload: batch serial, or for exec_pipe one `wc -l`.
BASELINES = ("serial", "wc")


def derive(rows: list[dict]) -> None:
    """Add speedup, items_per_s, gbps, pipe_fraction and peak_per_input to rows in place.

    A speedup is against the workload's baseline (serial, or one `wc -l`) on the row's own
    interpreter. With several interpreters (rows carry "python"), `vs_first` is against
    the baseline on the first one as well: the answer to "what does moving to that
    interpreter and that backend buy".
    """
    serial = {(r.get("python"), r["workload"]): r["median"] for r in rows
              if r["implementation"] in BASELINES and r.get("median")}
    first = rows[0].get("python") if rows else None
    pipes = {}
    for r in rows:
        if r["workload"] == "pipe" and r.get("median"):
            r["gbps"] = r["result_bytes"] / r["median"] / 1e9
            pipes[r.get("python")] = r
    for r in rows:
        med = r.get("median")
        if not med:
            continue
        py = r.get("python")
        base = serial.get((py, r["workload"]))
        r["speedup"] = base / med if base else None
        if py is not None:
            ref = serial.get((first, r["workload"]))
            r["vs_first"] = ref / med if ref else None
        r["items_per_s"] = r["items"] / med if r.get("items") else None
        pipe = pipes.get(py)
        if r.get("result_bytes"):
            r["gbps"] = r["result_bytes"] / med / 1e9
            # Only results that cross a process boundary go through a pipe at all.
            if pipe is not None and r["workload"] == "big_results" \
                    and r["implementation"] not in ("serial", "thread", "raw"):
                r["pipe_fraction"] = r["gbps"] / pipe["gbps"]
        if r["workload"] == "exec_pipe" and r.get("input_bytes"):
            r["gbps"] = r["input_bytes"] / med / 1e9  # a file read by cat: not in memory
        elif r.get("input_bytes") and r.get("peak_bytes"):
            r["peak_per_input"] = r["peak_bytes"] / r["input_bytes"]


def judge(rows: list[dict], workers: int) -> list[dict]:
    """Each issue-5 target with the figure this run measured and whether it is met."""
    def row(workload, key):
        return next((r for r in rows if r["workload"] == workload and r["implementation"] == key
                     and r.get("median") and r["workers"] in (workers, 1)), None)

    out = []
    ran = {r["workload"] for r in rows}
    for workload, what, other, required, kind in _SPECS:
        if workload not in ran:
            continue
        mine = row(workload, "thread" if other == "thread_serial" else "fork")
        measured = None
        if mine is not None:
            if other == "memory":
                measured = mine.get("peak_per_input")
            elif other == "pipe":
                measured = mine.get("pipe_fraction")
            elif other == "stdlib":
                best = [r["median"] for k in STDLIB if (r := row(workload, k))]
                measured = mine["median"] / min(best) if best else None
            elif other == "mp_pool_time":
                ref = row(workload, "mp_pool")
                measured = mine["median"] / ref["median"] if ref else None
            else:
                ref = row(workload, "serial" if other == "thread_serial" else other)
                if ref is not None:
                    measured = (mine["items_per_s"] / ref["items_per_s"] if kind == "items"
                                else ref["median"] / mine["median"])
        out.append(_judged(workload, what, required, kind, measured))
    for workload, what, other, required, kind in _EXEC_SPECS:
        if workload in ran:
            out.append(_judged(workload, what, required, kind,
                               _exec_figure(row(workload, "exec"), row, workload, other, kind)))
    for workload, what, other, required, kind, key in _EXEC_EXTRA:
        if workload in ran and row(workload, key) is not None:
            out.append(_judged(workload, what, required, kind,
                               _exec_figure(row(workload, key), row, workload, other, kind)))
    return out


def _exec_figure(mine, row, workload, other, kind):
    if mine is None:
        return None
    if other == "tree_mib":
        below = mine.get("peak_below_bytes")
        return None if below is None else below / 2**20
    ref = row(workload, other)
    if ref is None:
        return None
    if kind == "items":
        return mine["items_per_s"] / ref["items_per_s"]
    return ref["median"] / mine["median"]


def _judged(workload, what, required, kind, measured) -> dict:
    met = None if measured is None else (
        measured <= required if kind == "at_most" else measured >= required)
    sign = "<=" if kind == "at_most" else ">="
    return {"workload": workload, "target": what, "required": f"{sign} {required:g}",
            "measured": measured, "met": met}
