"""Snakemake job: one corpus split -> fixed-length blocks of token ids in Arrow shards."""

from cdsynth.jobs import run_job
from cdsynth.shards import build_shards

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: build_shards(
        smk.input.corpus,
        smk.input.tokenizer,
        smk.output[0],
        block_size=smk.params.block_size,
        blocks_per_shard=smk.params.blocks_per_shard,
        threads=smk.threads,
    ),
)
