"""The progress bar's text: scaled counts and rates, in the unit the input is counted in.

Issue 9: a run over 60 million rows showed `60000000/60000000 [..., 276876725.95item/s]`.
"""

from __future__ import annotations

import io
import re

from batch import _progress


def rendered(total, updates, unit) -> str:
    out = io.StringIO()
    bar = _progress.bar(True, total, unit=unit, file=out)
    for n in updates:
        bar.update(n)
    bar.close()
    return out.getvalue().split("\r")[-1].strip()  # the last refresh


def test_big_counts_and_rates_are_scaled_and_name_the_unit():
    text = rendered(60_000_000, [30_000_000, 30_000_000], "rows")
    assert "60.0M/60.0M" in text, text
    assert re.search(r"\d[\d.]* ?[kMGTPEZY] rows/s\]$", text), text
    assert not re.search(r"\d{5}", text), text  # no long unscaled number anywhere


def test_small_counts_stay_whole_numbers():
    text = rendered(2, [1, 1], "files")
    assert "| 2/2 [" in text and "files/s" in text, text


def test_unknown_total_shows_the_scaled_count_and_unit():
    text = rendered(None, [123_456], "lines")
    assert text.startswith("batch: 123k lines ["), text
    assert "lines/s]" in text, text
