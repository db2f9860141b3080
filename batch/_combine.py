"""Partial results back into shape: in chunk order, streamed, never all held at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

TYPE_CHECKING = False  # typing costs 2-3 ms of every start-up; its names are annotations here
if TYPE_CHECKING:
    from typing import Any

NOTHING = object()


def in_order(pairs: Iterable[tuple[int, Any]]) -> Iterator[Any]:
    """Values of (chunk index, value) pairs arriving in any order, yielded in index order.

    Only values that arrived ahead of a missing earlier chunk are held; the coordinator's
    window bounds how many that can be.
    """
    held: dict[int, Any] = {}
    expected = 0
    for index, value in pairs:
        held[index] = value
        while expected in held:
            yield held.pop(expected)
            expected += 1


def fold(reducer: Callable[[Any, Any], Any], partials: Iterable[Any], initial=NOTHING):
    """functools.reduce over partials that arrive one at a time."""
    acc = initial
    for partial in partials:
        acc = partial if acc is NOTHING else reducer(acc, partial)
    if acc is NOTHING:
        raise TypeError("map_reduce() of empty data with no initial value")
    return acc
