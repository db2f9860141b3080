"""Tools for working on batch itself, not used by `import batch`.

    test_on.py   python -m batch._dev.test_on PATH [PATH ...]: the test suite on another
                 interpreter (a venv of its own, batch installed with its test extras,
                 pytest, one line of result per interpreter)
"""
