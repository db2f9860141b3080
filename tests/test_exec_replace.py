"""Replacement strings mean what they mean in GNU parallel (the oracle, where installed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from batch._exec._replace import Template

VALUES = ["a/b.tar.gz", "c", "a/.bashrc", "d/e.", "/x", "f/", "dir.d/file", "sp ace/x y.z"]
TOKENS = ["{}", "{.}", "{/}", "{//}", "{/.}"]

EXPECTED = {  # what GNU parallel 20221122 prints for each value
    "a/b.tar.gz": ["a/b.tar.gz", "a/b.tar", "b.tar.gz", "a", "b.tar"],
    "c": ["c", "c", "c", ".", "c"],
    "/x": ["/x", "/x", "x", "/", "x"],
    "f/": ["f/", "f/", "", ".", ""],
}


@pytest.mark.parametrize("value", sorted(EXPECTED))
def test_each_replacement_string(value):
    assert Template(["echo", *TOKENS]).render([value], 1, 1)[1:] == EXPECTED[value]


def test_columns_job_number_slot_and_appending():
    t = Template(["cmd", "{2}", "{1/.}", "{#}", "{%}", "x{3}y"])
    assert t.render(["p/q.r", "two"], 7, 2) == ["cmd", "two", "q", "7", "2", "xy"]
    assert Template(["cmd", "-v"]).render(["a", "b"], 1, 1) == ["cmd", "-v", "a", "b"]
    assert Template(["cmd", "{}"]).render(["a", "b"], 1, 1) == ["cmd", "a b"]
    assert Template(["cmd", "{x}", "{-1}"]).render(["a"], 1, 1) == ["cmd", "{x}", "{-1}", "a"]


def test_shell_mode_quotes_values_and_the_appended_item():
    assert Template("echo {} >out", shell=True).render(["$(x) it's"], 1, 1) == \
        ["/bin/sh", "-c", "echo '$(x) it'\"'\"'s' >out"]
    assert Template(["wc -l"], shell=True).render(["a b"], 1, 1) == \
        ["/bin/sh", "-c", "wc -l 'a b'"]
    with pytest.raises(ValueError):
        Template("echo {}")  # one string without shell=True


@pytest.mark.skipif(shutil.which("parallel") is None, reason="GNU parallel is not installed")
@pytest.mark.timeout(60)
def test_agrees_with_gnu_parallel():
    args = ["parallel", "--will-cite", "-k", "-q", "printf", r"%s\t%s\t%s\t%s\t%s\n", *TOKENS,
            ":::", *VALUES]
    got = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    ours = ["\t".join(Template(["p", *TOKENS]).render([v], 1, 1)[1:]) for v in VALUES]
    assert got.splitlines() == ours
