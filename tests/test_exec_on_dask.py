"""`batch exec --backend dask`: jobs on a Dask cluster's workers read like local ones.

The one-job half (batch/cli/exec/_dask.py) comes from its own branch: until it is merged
this test skips with that reason.
"""

from __future__ import annotations

import importlib.util

import pytest
from test_cli_support import batch

pytest.importorskip("distributed")
needs_dask_jobs = pytest.mark.skipif(
    importlib.util.find_spec("batch.cli.exec._dask") is None,
    reason="needs batch/cli/exec/_dask.py")


@needs_dask_jobs
@pytest.mark.timeout(120)
def test_jobs_on_a_local_cluster_log_exit_and_order_as_locally(tmp_path):
    log = tmp_path / "log.tsv"
    p = batch("exec", "--backend", "dask", "-j2", "-k", "--joblog", log, "--timeout", "2",
              "sh", "-c", 'echo "$0"; [ "$0" = slow ] && sleep 30; exit $1', ":::",
              "a b", "slow", ":::", 0, 3, timeout=110)
    assert p.returncode == 3, p.stderr  # a b/3, slow/0 (timed out), slow/3 (timed out)
    assert p.stdout.splitlines() == ["a b", "a b", "slow", "slow"]
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    assert rows[0][:2] == ["Seq", "Host"] and len(rows) == 5
    by_seq = {int(r[0]): r for r in rows[1:]}
    assert [by_seq[i][6] for i in (1, 2)] == ["0", "3"]          # Exitval
    assert [by_seq[i][6:8] for i in (3, 4)] == [["-1", "15"]] * 2  # timed out: -1, SIGTERM
    assert all(r[1] not in ("", ":") for r in rows[1:])          # the worker's host
