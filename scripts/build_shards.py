"""Snakemake job: one corpus split -> its documents as token ids in Arrow shards."""

from cdsynth.data.shards import build_shards
from cdsynth.jobs import run_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: build_shards(
        smk.input.corpus,
        smk.input.tokenizer,
        smk.output[0],
        tokens_per_shard=smk.params.tokens_per_shard,
        threads=smk.threads,
    ),
)
