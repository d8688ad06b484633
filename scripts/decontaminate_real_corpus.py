"""Snakemake job: the real train split without its contaminated documents, and how many were dropped."""

from cdsynth.describe.decontamination import decontaminate_split
from cdsynth.jobs import run_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: decontaminate_split(smk.input.train, smk.params.eval_data, smk.output.split, smk.output.stats),
)
