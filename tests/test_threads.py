"""OpenMP settings for CPU jobs: set before torch loads, never over the user's, seen by a fresh process."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from helpers import REPO

from cdsynth.threads import COUNT_VARIABLES, WAIT_POLICIES, WAIT_POLICY, WAIT_VARIABLES, configure_openmp


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in COUNT_VARIABLES + WAIT_VARIABLES}


def test_it_sets_the_thread_count_and_the_wait_policy():
    environ = {}
    chosen = configure_openmp(3, environ=environ)
    assert environ == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"} | WAIT_POLICIES[WAIT_POLICY]
    assert chosen == environ


def test_without_a_count_it_sets_the_policy_alone():
    environ = {}
    configure_openmp(environ=environ, policy="spin1000")
    assert environ == {"GOMP_SPINCOUNT": "1000"}


@pytest.mark.parametrize("user", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "5"}])
def test_the_users_values_are_kept(user):
    environ = {"OMP_NUM_THREADS": "8"} | user
    chosen = configure_openmp(2, environ=environ, policy="passive")
    # Either wait variable is the user's choice of policy: none of ours is mixed in.
    assert environ == {"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "2"} | user
    assert chosen == {"MKL_NUM_THREADS": "2"}


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2"])
def test_a_bad_count_is_refused(threads):
    with pytest.raises(ValueError, match="positive integer"):
        configure_openmp(threads, environ={})


def test_it_warns_when_torch_is_already_imported(monkeypatch):
    monkeypatch.setattr(os, "environ", {})
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch", object()))
    with pytest.warns(UserWarning, match="before importing torch"):
        configure_openmp(1)
    assert os.environ["OMP_NUM_THREADS"] == "1"


def test_a_process_that_configures_before_importing_torch_runs_its_thread_count():
    # 1: not torch's default here (the cores; torch caps OMP_NUM_THREADS at them too).
    code = (
        "import os\n"
        "from cdsynth.threads import configure_openmp\n"
        "configure_openmp(1)\n"
        "import torch\n"
        "wait = [os.environ.get(name) for name in ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')]\n"
        "print(torch.get_num_threads(), *wait)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    policy = WAIT_POLICIES[WAIT_POLICY]
    expected = ["1", policy.get("OMP_WAIT_POLICY", "None"), policy.get("GOMP_SPINCOUNT", "None")]
    assert result.stdout.split() == expected


SNAKEFILE = """
from cdsynth.threads import configure_openmp

configure_openmp()


rule probe:
    output:
        "env.json",
    threads: 2
    script:
        "probe.py"
"""
PROBE = """
import json, os

names = ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"]
json.dump({name: os.environ.get(name) for name in names}, open(snakemake.output[0], "w"))
"""


@pytest.mark.parametrize("user", [{}, {"GOMP_SPINCOUNT": "5"}])
def test_a_script_job_inherits_the_policy_from_the_snakefile_and_its_threads_from_snakemake(tmp_path, user):
    """What the workflow relies on: Snakemake hands its own environment, which the Snakefile set, to
    each `script:` job, with OMP_NUM_THREADS and MKL_NUM_THREADS set to the job's threads."""
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "probe.py").write_text(PROBE)
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(tmp_path)]
    command += ["--snakefile", str(tmp_path / "Snakefile")]
    result = subprocess.run(command, env=clean_env() | user, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads((tmp_path / "env.json").read_text())
    wait = user or WAIT_POLICIES[WAIT_POLICY]
    assert seen == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"} | dict.fromkeys(WAIT_VARIABLES) | wait


def load_bench():
    spec = importlib.util.spec_from_file_location("cpu_threads", REPO / "bench/cpu_threads.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_recommends_the_policy_with_the_best_worse_case():
    # (`bench/cpu_threads.py --smoke` runs every setting; it takes minutes on 2 busy cores, so not here.)
    bench = load_bench()
    idle = {"default": 12000, "passive": 9500, "spin10000": 11800, "spin1000": 11000}
    busy = {"default": 550, "passive": 6900, "spin10000": 6500, "spin1000": 6800}
    speeds = {(p, 2, "idle"): [v] for p, v in idle.items()} | {
        (p, 2, "neighbour"): [v] for p, v in busy.items()
    }
    speeds |= {(p, 1, phase): [6000] for p in idle for phase in ("idle", "neighbour")}
    line = bench.recommend(speeds, threads=2)
    assert line.startswith("recommendation: WAIT_POLICY = 'spin10000' (GOMP_SPINCOUNT=10000)"), line
    assert "1 thread ran faster" not in line


def test_a_fair_neighbour_costs_what_the_scheduler_gives_it():
    bench = load_bench()
    assert bench.fair_cost(threads=1, nice=0, cpus=2) == 0  # a core each
    assert bench.fair_cost(threads=2, nice=0, cpus=2) == pytest.approx(1 / 3)  # 3 equal threads, 2 cores
    assert bench.fair_cost(threads=2, nice=19, cpus=2) < 0.01
