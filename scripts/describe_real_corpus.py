"""Snakemake job: the real train split's statistics (its overlap with the evaluation data)."""

from cdsynth.describe.contamination import describe_split
from cdsynth.jobs import run_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(smk, lambda: describe_split(smk.input.train, smk.params.eval_data, smk.output[0]))
