"""Snakemake job: the word-budget table of one table's runs (CSV and Markdown)."""

from cdsynth.jobs import run_job
from cdsynth.report.budgets import write_budget_table

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: write_budget_table(
        smk.params.experiments, list(smk.input), smk.params.track, smk.output.csv, smk.output.markdown
    ),
)
