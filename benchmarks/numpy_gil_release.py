"""Question: when the work is numpy calls that release the GIL (np.sort, matmul), do
threads catch up with processes, and is forking still worth it?

192 blocks of 256x256 float64 (32 with --quick), each sorted and multiplied by its
transpose; BLAS is held to one thread in every implementation so that serial means one
core. Targets: batch fork at least 1.75x serial, batch thread at least 1.8x.

    python -m benchmarks.numpy_gil_release [--quick] [--json FILE]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("numpy_gil_release",)))
