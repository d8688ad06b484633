"""Snakemake job: gather a synthetic corpus's shards into manifest.json (counts and sha256 per shard)."""

from cdsynth.jobs import run_job
from cdsynth.synth.manifest import write_manifest

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(smk, lambda: write_manifest(list(smk.input), smk.output[0], smk.params.synth))
