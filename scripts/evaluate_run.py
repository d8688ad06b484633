"""Snakemake job: evaluate every checkpoint of one run (perplexity + BabyLM 2025 suite)."""

from cdsynth.eval.suite import evaluate_run
from cdsynth.jobs import run_job
from cdsynth.spec.evaluation import Evaluation

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: evaluate_run(
        smk.input.run,
        smk.params.stride,
        smk.input.test,
        smk.output[0],
        Evaluation(**smk.params.evaluation),
        smk.threads,
        model_name=smk.params.model_name,
    ),
)
