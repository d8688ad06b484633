"""Snakemake job: fetch one remote source file into resources/ (checksummed, cached)."""

from cdsynth.data.download import fetch
from cdsynth.jobs import run_job

entry = snakemake.params.entry  # noqa: F821 (injected by Snakemake)
run_job(
    snakemake,  # noqa: F821
    lambda: fetch(entry["url"], snakemake.output[0], sha256=entry.get("sha256"), member=entry.get("member")),  # noqa: F821
)
