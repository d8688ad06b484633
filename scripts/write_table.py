"""Snakemake job: one results table (CSV + Markdown) with its gains figure and training curves."""

from pathlib import Path

from cdsynth.jobs import run_job
from cdsynth.report.tables import make_table
from cdsynth.spec.paths import metrics_file

smk = snakemake  # noqa: F821 (injected by Snakemake)
experiments, seeds = smk.params.experiments, smk.params.seeds


def summary_dirs() -> dict[str, str]:
    """Experiment -> its summary's directory; the input has one summary per experiment, in order."""
    summaries = zip(experiments, smk.input.summaries, strict=True)
    return {name: str(Path(summary).parent) for name, summary in summaries}


def metrics() -> dict[str, dict[int, str]]:
    """Experiment -> seed -> training metrics; the input has a run per experiment and seed, in order."""
    runs = iter(smk.input.runs)
    return {name: {seed: metrics_file(next(runs)) for seed in seeds} for name in experiments}


run_job(
    smk,
    lambda: make_table(
        f"Table {smk.wildcards.table}",
        experiments,
        smk.params.baseline,
        summary_dirs(),
        metrics(),
        {
            "csv": smk.output.csv,
            "markdown": smk.output.markdown,
            "gains": smk.output.gains,
            "curves": smk.output.curves,
        },
        smk.params.confidence,
        tasks=smk.params.tasks,
        gain_tasks=smk.params.gain_tasks,
    ),
)
