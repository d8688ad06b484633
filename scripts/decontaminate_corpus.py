"""Snakemake job: a synthetic corpus without its contaminated samples (shards, manifest.json, card)."""

from pathlib import Path

from cdsynth.describe.decontaminated_corpus import decontaminate_corpus
from cdsynth.jobs import run_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: decontaminate_corpus(
        Path(smk.input.manifest).parent, smk.params.eval_data, Path(smk.output.manifest).parent
    ),
)
