"""The benchmark harness behind `batch bench` and the scripts in benchmarks/.

    command.py     arguments (configure/run), shared by the CLI and benchmarks/
    _suite.py      a run: plan, measure one by one (progress bar), derive, judge
    _runner.py     one measurement in a fresh process; memory sampled from outside it
    _child.py      the benchmarked process: build the input, then time repetitions
    _workloads.py  what is computed, at three sizes, and the check of each result
    _peers.py      batch's backends and multiprocessing, concurrent.futures, joblib, mpire
    _exec.py       batch exec, xargs -P, GNU parallel and wc -l as command lines
    _memory.py     peak PSS of a process tree, plus shared memory growth
    _pipe.py       raw pipe bandwidth, the ceiling for big results
    _targets.py    speedups, items/s, bandwidth; issues 5 and 11's targets, judged
    _report.py     terminal table, Markdown, JSON, matplotlib chart
    _machine.py    CPU, cores, memory, Python, numpy, BLAS

One harness, so that `batch bench` and `python -m benchmarks` print the same numbers.
Nothing here is imported by `import batch`.
"""
