"""Snakemake job: a synthetic corpus's statistics (stats.json) and dataset card (README.md)."""

from pathlib import Path

from cdsynth.describe.description import describe_corpus
from cdsynth.jobs import run_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: describe_corpus(
        Path(smk.input.manifest).parent,
        smk.input.tokenizer,
        smk.input.reference,
        eval_data=smk.params.eval_data,
    ),
)
