"""A tqdm bar that counts items, driven from the coordinator's own thread.

tqdm is imported only when a bar is asked for, so `import batch` stays light. Its monitor
thread is turned off: a thread alive at fork time can leave a lock held in the child.
"""

from __future__ import annotations


class _Off:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def bar(enabled: bool, total: int | None, desc: str = "batch"):
    if not enabled:
        return _Off()
    from tqdm import tqdm

    class _Bar(tqdm):
        monitor_interval = 0

    return _Bar(total=total, desc=desc, unit="item", dynamic_ncols=True)
