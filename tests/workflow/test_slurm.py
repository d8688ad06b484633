"""The workflow through a real single-node SLURM on loopback: every job goes through sbatch.

It starts munged, slurmctld and slurmd with workflow/cluster/local_slurm.sh (installing the Debian
packages if needed), so it runs as root, as CI does, and is skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from helpers import REPO, job_counts, snakemake, tiny_config

from cdsynth.report.summaries import read_history
from cdsynth.report.tables import read_table

SCRIPT = REPO / "workflow/cluster/local_slurm.sh"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="starts SLURM daemons, so needs root (CI runs as root)"),
    pytest.mark.skipif(
        not shutil.which("slurmctld") and not shutil.which("apt-get"),
        reason="needs SLURM or Debian's apt-get to install it",
    ),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    subprocess.run([SCRIPT, "start", state], check=True, capture_output=True, text=True, timeout=600)
    yield state
    subprocess.run([SCRIPT, "stop", state], check=True, timeout=60)


def test_a_tiny_config_runs_end_to_end_through_sbatch(cluster, tmp_path, corpus_dir):
    config = tiny_config(corpus_dir)
    config["experiments"].pop("No-Contrast")
    config["tables"]["main"] = ["Baseline", "CD-Early-10"]
    config["resources"]["synth"]["gpus"] = 1  # scheduled on the node's fake GPUs; the job falls back to CPU
    profile = REPO / "workflow/profiles/slurm-local"
    result = snakemake(tmp_path, config, "--profile", str(profile), "results/table_main.csv", timeout=1500)
    assert result.returncode == 0, result.stderr[-4000:]
    assert [row["experiment"] for row in read_table(tmp_path / "results/table_main.csv")] == [
        "Baseline",
        "CD-Early-10",
    ]
    jobs = job_counts(result.stderr)
    # Every job but the target-less `all` went through sbatch, the GPU ones asking for the fake GPU.
    submitted = result.stderr.count("has been submitted with SLURM jobid")
    assert submitted == jobs["total"] - jobs.get("all", 0)
    synth_jobs = [block for block in result.stderr.split("\n\n") if "rule synth_shard:" in block]
    assert synth_jobs and all("gpu=1" in block for block in synth_jobs)


def test_a_training_job_that_hits_its_time_limit_resumes_on_retry(cluster, tmp_path, corpus_dir):
    config = tiny_config(corpus_dir)
    config["synth"]["good"]["step"] = "best"
    config["experiments"] = {"Baseline": {}}
    config["tables"] = {"main": ["Baseline"]}
    run = "results/models/micro/seed42"
    # Without SLURM: the data, and a short run that times a training step on this machine.
    config["train"].update(steps=200, checkpoints={"every": 200})
    local = snakemake(tmp_path, config, run)
    assert local.returncode == 0, local.stderr[-3000:]
    seconds_per_step = read_history(tmp_path / run / "metrics.csv")[-1]["elapsed_s"] / 200
    # About 110 s of training (and ~15 s of start-up) against a 1-minute limit, which SLURM enforces
    # within 30 s: the first attempt is stopped midway; the retry, with 2 minutes, resumes and finishes.
    steps = round(110 / seconds_per_step)
    config["train"].update(steps=steps, checkpoints={"every": max(1, steps // 20)})
    config["resources"]["train"]["runtime"] = 1
    profile = REPO / "workflow/profiles/slurm-local"
    result = snakemake(tmp_path, config, "--profile", str(profile), "--retries", "2", run, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Time limit exhausted for JobId=" in (cluster / "slurmctld.log").read_text()
    log = (tmp_path / "results/logs/train_baseline/micro/seed42.log").read_text()
    assert "resuming from step" in log, log[-3000:]
    assert read_history(tmp_path / run / "metrics.csv")[-1]["step"] == steps
