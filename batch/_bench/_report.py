"""A run's dict as a terminal table, Markdown, JSON or a PNG chart.

matplotlib is imported only by `plot`, and only when a chart is asked for.
"""

from __future__ import annotations

import json
import textwrap

from . import _machine

COLUMNS = ("workload", "implementation", "workers", "median s", "min s", "max s", "speedup",
           "items/s", "peak MiB", "note")

# Left-aligned columns (names, notes); the others are numbers, right-aligned.
_TEXT = ("workload", "implementation", "python", "note", "target", "")

INSTALL_HINT = "the --plot chart needs matplotlib: pip install matplotlib (or 'batch[bench]')"


def _num(x, digits=3) -> str:
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if x < 1 else f"{x:.{digits}f}"


def _note(r: dict) -> str:
    if r.get("error"):
        return f"FAILED: {r['error']}"
    parts = [r["note"]] if r.get("note") else []
    if r.get("peak_below_bytes") is not None:
        parts.append(f"its programs' tree {r['peak_below_bytes'] / 2**20:,.0f} MiB")
    if r.get("peak_per_input"):
        parts.append(f"peak {r['peak_per_input']:.2f}x input")
    if r.get("gbps"):
        frac = r.get("pipe_fraction")
        parts.append(f"{r['gbps']:.2f} GB/s" + (f", {frac:.0%} of pipe" if frac else ""))
    if r.get("python", "").endswith("t") and r.get("gil_enabled"):
        parts.append("GIL re-enabled by an import")  # a free-threaded build that was not
    return "; ".join(parts)


def _pythons(data: dict) -> list[str]:
    """The interpreters' labels, in --python order; empty for a one-interpreter run."""
    return [py["label"] for py in data["machine"].get("interpreters", ())]


def columns(data: dict) -> tuple:
    pythons = _pythons(data)
    if not pythons:
        return COLUMNS
    i = COLUMNS.index("speedup") + 1
    return COLUMNS[:2] + ("python",) + COLUMNS[2:i] + (f"vs {pythons[0]} serial",) + COLUMNS[i:]


def cells(r: dict) -> list[str]:
    peak = r.get("peak_bytes")
    out = [r["workload"], r["label"], str(r["workers"]), _num(r.get("median")),
           _num(r.get("min")), _num(r.get("max")),
           "-" if r.get("speedup") is None else f"{r['speedup']:.2f}x",
           _num(r.get("items_per_s"), 3), "-" if peak is None else f"{peak / 2**20:,.0f}",
           _note(r)]
    if "python" in r:
        out.insert(2, r["python"])
        out.insert(8, "-" if r.get("vs_first") is None else f"{r['vs_first']:.2f}x")
    return out


def _target_cells(t: dict) -> list[str]:
    met = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
    out = [t["workload"], t["target"], t["required"],
           "-" if t["measured"] is None else f"{t['measured']:.3g}", met]
    if "python" in t:
        out.insert(1, t["python"])
    return out


_TARGET_COLUMNS = ("workload", "target", "required", "measured", "")


def _target_columns(data: dict) -> tuple:
    if not _pythons(data):
        return _TARGET_COLUMNS
    return _TARGET_COLUMNS[:1] + ("python",) + _TARGET_COLUMNS[1:]


def _header(data: dict) -> list[str]:
    s = data["settings"]
    pythons = [f"{py['label']} ({py['kind']}, numpy {py['modules']['numpy']}) {py['path']}"
               for py in data["machine"].get("interpreters", ())]
    return [f"machine: {_machine.summary(data['machine'])}"] + \
        ([f"interpreters: {'; '.join(pythons)}"] if pythons else []) + [
            f"run: {s['size']} size, {s['workers']} workers, median of {s['repeat']} "
            f"repetitions, {s.get('seconds', '?')} s, started {s['started']}; "
            f"load average before {s['load_before']}, after {s.get('load_after')}"
            + (f"; WARNING: batch's source changed during the run, to "
               f"{s['batch_source_after']}" if s.get("batch_source_after") else "")]


def _targets_title(data: dict) -> str:
    size = data["settings"]["size"]
    if size == "full":
        return "targets (issues 5, 10 and 11; reported, not asserted)"
    # Smaller inputs put fixed costs in front: a quick run's ratios do not grade batch.
    return (f"targets (issues 5, 10 and 11; reported, not asserted; set for the full sizes, so "
            f"on this {size} run they are indicative only)")


def table(data: dict) -> str:
    """Aligned plain-text tables of results and targets, for the terminal."""
    def render(header, rows):
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
        lines, last = [], None
        for i, row in enumerate([header, *rows]):
            if i > 1 and row[0] != last:
                lines.append("")
            last = row[0] if i else None
            lines.append("  ".join(c.ljust(w) if header[j] in _TEXT else c.rjust(w)
                                   for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        return lines

    out = _header(data) + [""]
    out += render(columns(data), [cells(r) for r in data["rows"]])
    out += ["", _targets_title(data) + ":"]
    out += render(_target_columns(data), [_target_cells(t) for t in data["targets"]])
    return "\n".join(out) + "\n"


def markdown(data: dict) -> str:
    def md(header, rows):
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        return lines

    out = ["## Machine and run", ""] + [f"- {line}" for line in _header(data)]
    out += ["", "## Questions", ""]
    out += [f"- `{name}`: {q}" for name, q in data.get("questions", {}).items()]
    out += ["", "## Results", ""] + md(columns(data), [cells(r) for r in data["rows"]])
    out += ["", "## Targets", "", _targets_title(data) + ".", ""]
    out += md(_target_columns(data), [_target_cells(t) for t in data["targets"]])
    return "\n".join(out) + "\n"


def to_json(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def plot(data: dict, path: str) -> None:
    """Up to three panels (`panels`): speedup vs serial per workload (log), the fixed
    cost of a 2-item call (log, ms), and speedup against workers on fixed work."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in data["rows"] if r.get("median")]
    impls = list(dict.fromkeys(r["label"] for r in rows if r["implementation"] != "raw"))
    colors = {label: f"C{i % 10}" for i, label in enumerate(impls)}
    pythons = _pythons(data)
    if pythons:  # one series per implementation and interpreter: a colour per
        # implementation, lighter for each interpreter after the first
        from matplotlib.colors import to_rgb
        colors = {f"{impl} {py}": tuple(c + (1 - c) * 0.6 * j / max(1, len(pythons) - 1)
                                        for c in to_rgb(colors[impl]))
                  for impl in impls for j, py in enumerate(pythons)}
        rows = [dict(r, label=f"{r['label']} {r['python']}") for r in rows]
    labels = [label for label in colors if any(r["label"] == label for r in rows)]
    shown = panels(rows)
    fig, axes = plt.subplots(1, len(shown), figsize=(7 + 4.5 * (len(shown) - 1), 5.8),
                             gridspec_kw={"width_ratios": [_WIDTHS[p] for p in shown]},
                             squeeze=False)
    panel = dict(zip(shown, axes[0]))
    if "speedup" in panel:
        bars = panel["speedup"]
        _grouped(bars, [r for r in rows if r["workload"] not in _NOT_SPEEDUP],
                 labels, colors, "speedup")
        bars.axhline(1, color="black", linewidth=0.8)
        bars.set_ylabel("speedup vs batch serial (log)")
        bars.set_title("speedup per workload (higher is better)")
    if "startup" in panel:
        start = panel["startup"]
        _grouped(start, [r for r in rows if r["workload"].startswith("startup")],
                 labels, colors, "median", scale=1e3)
        start.set_ylabel("ms per 2-item call (log)")
        start.set_title("fixed cost of one call (lower is better)")
    if "scaling" in panel:
        lines = panel["scaling"]
        scaling = [r for r in rows if r["workload"] == "scaling" and r.get("speedup")]
        for label in dict.fromkeys(r["label"] for r in scaling):
            pts = sorted((r["workers"], r["speedup"]) for r in scaling if r["label"] == label)
            lines.plot(*zip(*pts), marker="o", color=colors.get(label), label=label)
        most = max(r["workers"] for r in scaling)
        lines.plot([1, most], [1, most], linestyle=":", color="grey", label="ideal")
        lines.set_xticks(range(1, most + 1))
        lines.set_xlabel("workers")
        lines.set_ylabel("speedup vs batch serial")
        lines.set_title("scaling, pure-Python work")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[label]) for label in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8)
    s = data["settings"]
    width = fig.get_size_inches()[0]  # about 17 characters an inch at 8 points
    summary = textwrap.fill(_machine.summary(data["machine"]), int(width * 17))
    fig.suptitle(f"{summary}\n{s['size']} run, {s['workers']} workers, median of "
                 f"{s['repeat']}, load average before {s['load_before']}", fontsize=8)
    fig.tight_layout(rect=(0, 0.03 * (1 + (len(labels) - 1) // 6) + 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


_NOT_SPEEDUP = ("scaling", "pipe", "startup", "startup_big")
_WIDTHS = {"speedup": 5, "startup": 2, "scaling": 2}


def panels(rows) -> list[str]:
    """The chart's panels that have something to show (a run with --only draws no
    empty ones): speedup per workload, the fixed cost of a call, scaling."""
    shown = [name for name, wanted in (
        ("speedup", lambda r: r["workload"] not in _NOT_SPEEDUP and r.get("speedup")),
        ("startup", lambda r: r["workload"].startswith("startup")),
        ("scaling", lambda r: r["workload"] == "scaling" and r.get("speedup")),
    ) if any(wanted(r) for r in rows)]
    return shown or ["speedup"]


def _grouped(ax, rows, labels, colors, key, scale=1.0) -> None:
    """Bars of r[key] per workload, one per implementation, on a log axis."""
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    present = [label for label in labels if any(r["label"] == label for r in rows)]
    width = 0.8 / max(1, len(present))
    for i, label in enumerate(present):
        got = {r["workload"]: r[key] * scale for r in rows if r["label"] == label and r.get(key)}
        xs = [w + (i - (len(present) - 1) / 2) * width for w in range(len(workloads))]
        ax.bar(xs, [got.get(w, 0) for w in workloads], width, color=colors[label])
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)), workloads, rotation=12)
