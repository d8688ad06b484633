"""CPU threading of torch jobs: OpenMP's settings, which must be in the environment before torch loads.

torch's Linux wheels run their CPU ops on GNU OpenMP (libgomp), which reads OMP_NUM_THREADS,
OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when `import torch` loads it; setting them later does nothing.
A libgomp thread waiting for work spins (GOMP_SPINCOUNT times, ~300,000 by default, a few ms) before
it sleeps. On an idle machine that saves a wake-up per parallel region; beside a busy neighbour the
spinning threads hold the cores the thread they wait for needs: the demo's 2-thread training on 2 cores
fell from ~11,800 tokens/s to 543 beside one single-thread process. `bench/cpu_threads.py` measures each
policy below, idle and with a neighbour (bench/RESULTS.md); WAIT_POLICY is the one the workflow's jobs get.

How a job gets these: the Snakefile calls `configure_openmp()` while Snakemake parses it, so every job
inherits the wait policy from Snakemake's environment (local jobs, and SLURM jobs through --export=ALL,
whose job step parses the Snakefile again), before a script's first line runs; Snakemake itself sets
OMP_NUM_THREADS and MKL_NUM_THREADS to each job's `threads` for `shell:` and `script:` jobs. Code
outside Snakemake (a notebook, a benchmark) calls `configure_openmp(threads)` before importing torch.
This module imports no torch.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import MutableMapping

# Name -> the variables that select it (bench/cpu_threads.py measures them all).
WAIT_POLICIES: dict[str, dict[str, str]] = {
    "default": {},  # libgomp's own: spin ~300,000 times (a few ms), then sleep
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},  # sleep at once
    "spin10000": {"GOMP_SPINCOUNT": "10000"},  # spin ~0.1 ms, then sleep
    "spin1000": {"GOMP_SPINCOUNT": "1000"},  # spin ~0.01 ms, then sleep
}
# Measured (bench/RESULTS.md, 2-core EPYC, demo training at 2 threads): beside one busy 1-thread neighbour
# of equal priority, passive ran 7,662 tokens/s against the default's 4,007 (a 35% cost, the fair share
# being 33%, against 67%); idle it is 5% slower (11,714 vs 12,308). Short spins (GOMP_SPINCOUNT 10000 /
# 1000) still collapse (2,786 / 5,826) and are slower idle too.
WAIT_POLICY = "passive"
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
COUNT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def configure_openmp(
    threads: int | None = None,
    *,
    policy: str = WAIT_POLICY,
    environ: MutableMapping[str, str] | None = None,
) -> dict[str, str]:
    """Give OpenMP its thread count and wait policy; call before torch is imported. Returns what it set.

    Only variables the user has not set are set (setdefault): OMP_NUM_THREADS and MKL_NUM_THREADS to
    `threads` (None: leave them), and the `policy` from WAIT_POLICIES unless OMP_WAIT_POLICY or
    GOMP_SPINCOUNT is already set (either one is the user's choice of policy: GOMP_SPINCOUNT overrides
    the spinning OMP_WAIT_POLICY implies, so the two are never mixed). `environ`: os.environ by default.
    """
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer, not {threads!r}")
    if environ is None:
        environ = os.environ
        if "torch" in sys.modules:
            warnings.warn(
                "torch is already imported, so OpenMP has read its settings: call configure_openmp() "
                "before importing torch (or anything that imports it)",
                stacklevel=2,
            )
    wanted = dict.fromkeys(COUNT_VARIABLES, str(threads)) if threads is not None else {}
    if not any(name in environ for name in WAIT_VARIABLES):
        wanted |= WAIT_POLICIES[policy]
    chosen = {name: value for name, value in wanted.items() if name not in environ}
    environ.update(chosen)
    return chosen


def set_torch_threads(threads: int) -> None:
    """Run this process's torch CPU ops on `threads` threads: the job's `threads`, as in OMP_NUM_THREADS.

    The wait policy cannot change any more once torch is imported (see `configure_openmp`).
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, not {threads!r}")
    import torch

    torch.set_num_threads(threads)
