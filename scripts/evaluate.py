"""Snakemake job: evaluate one checkpoint (perplexity + BabyLM 2025 suite)."""

from pathlib import Path

from cdsynth.evaluate import evaluate_checkpoint
from cdsynth.jobs import run_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: evaluate_checkpoint(
        smk.input.checkpoint,
        smk.params.data_dir,
        smk.input.test,
        Path(smk.output.scores).parent,
        max_items=smk.params.max_items,
        batch_size=smk.params.batch_size,
        window=smk.params.window,
        threads=smk.threads,
    ),
)
