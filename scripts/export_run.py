"""Snakemake job: one run as a git repository ready to push to the Hub (main + a branch per BabyLM mark)."""

from cdsynth.export import export_run
from cdsynth.jobs import run_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: export_run(
        smk.input.run,
        smk.output[0],
        budget=smk.input.budget,
        eval_dir=smk.input.eval,
        corpus=smk.input.corpus or None,
        track=smk.params.track,
    ),
)
