"""A tqdm bar that counts items, driven from the coordinator's own thread.

tqdm is imported only when a bar is asked for, so `import batch` stays light. Its monitor
thread is turned off: a thread alive at fork time can leave a lock held in the child.

Counts and rates are scaled (`60.0M/60.0M [00:01<00:00, 52.4M rows/s]`): an unscaled
rate of a fast map over a big array was `276876725.95item/s`, unreadable (issue 9). The
unit names what the input is counted in (rows of an array, lines, files, runs), with a
leading space because tqdm writes it straight after the number. tqdm's unit_scale alone
writes small counts as `2.00/2.00`: counts under 1000 are written as whole numbers, by
tqdm's own bar_format fields, chosen afresh at each refresh because a text file's total
becomes known only as it is read.
"""

from __future__ import annotations


class _Off:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


# tqdm's own defaults, with whole numbers under 1000 (count, whole) for n_fmt, total_fmt.
_KNOWN = "{l_bar}{bar}| {count}/{whole} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
_UNKNOWN = "{desc}: {count}{unit} [{elapsed}, {rate_fmt}{postfix}]"


def _count(x) -> str:
    from tqdm import tqdm

    if x is None:
        return "?"
    return str(int(x)) if x < 1000 and x == int(x) else tqdm.format_sizeof(x)


def bar(enabled: bool, total: int | None, desc: str = "batch", *, unit: str = "items",
        file=None):
    """A bar counting `unit` up to `total` (None: unknown) on `file` (None: stderr)."""
    if not enabled:
        return _Off()
    from tqdm import tqdm

    class _Bar(tqdm):
        monitor_interval = 0

        @property
        def format_dict(self):
            d = super().format_dict
            d["count"], d["whole"] = _count(d["n"]), _count(d["total"])
            d["bar_format"] = _KNOWN if d["total"] else _UNKNOWN
            return d

    return _Bar(total=total, desc=desc, unit=f" {unit}", unit_scale=True,
                dynamic_ncols=True, file=file)
