"""Snakemake job: the report's Corpora section: statistics table and figure, samples side by side."""

from cdsynth.jobs import run_job
from cdsynth.report.corpora import describe_corpora

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: describe_corpora(
        smk.params.corpora,
        smk.input.real,
        smk.input.tokenizer,
        {"table": smk.output.table, "figure": smk.output.figure, "samples": smk.output.samples},
    ),
)
