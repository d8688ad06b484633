"""Snakemake job: one results table (CSV + Markdown) with its gains figure and training curves."""

from cdsynth.jobs import run_job
from cdsynth.report.tables import make_table

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: make_table(
        f"Table {smk.wildcards.table}",
        smk.params.experiments,
        smk.params.baseline,
        smk.params.summary_dirs,
        smk.params.metrics,
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
