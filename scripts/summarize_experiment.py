"""Snakemake job: one experiment's mean-max scores and bootstrap replicates."""

from pathlib import Path

from cdsynth.jobs import run_job
from cdsynth.report.summaries import summarize_experiment

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: summarize_experiment(
        smk.wildcards.experiment,
        dict(zip(smk.params.seeds, smk.input, strict=True)),  # one evaluation per seed, in this order
        smk.params.data_dir,
        Path(smk.output.summary).parent,
        samples=smk.params.samples,
        seed=smk.params.seed,
    ),
)
