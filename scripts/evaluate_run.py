"""Snakemake job: evaluate every checkpoint of one run (perplexity + BabyLM 2025 suite)."""

from cdsynth.eval.suite import evaluate_run
from cdsynth.jobs import run_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: evaluate_run(
        smk.input.run,
        smk.params.steps,
        smk.params.data_dir,
        smk.input.test,
        smk.output[0],
        max_items=smk.params.max_items,
        batch_size=smk.params.batch_size,
        window=smk.params.window,
        threads=smk.threads,
        reading_predictor=smk.params.reading_predictor,
        dtype=smk.params.dtype,
    ),
)
