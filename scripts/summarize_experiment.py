"""Snakemake job: one experiment's mean-max scores and bootstrap replicates."""

from pathlib import Path

from cdsynth.jobs import run_job
from cdsynth.report.summaries import summarize_experiment
from cdsynth.spec.paths import checkpoint_dir

smk = snakemake  # noqa: F821 (injected by Snakemake)


def evaluations() -> dict[int, dict[int, str]]:
    """Seed -> step -> evaluation directory; the input is one evaluation per seed, in the params' order."""
    return {
        seed: {step: checkpoint_dir(evaluation, step) for step in smk.params.steps}
        for seed, evaluation in zip(smk.params.seeds, smk.input, strict=True)
    }


run_job(
    smk,
    lambda: summarize_experiment(
        smk.wildcards.experiment,
        evaluations(),
        smk.params.data_dir,
        Path(smk.output.summary).parent,
        samples=smk.params.samples,
        seed=smk.params.seed,
    ),
)
