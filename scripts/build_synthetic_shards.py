"""Snakemake job: a synthetic corpus -> training blocks, samples split on BOS/EOS."""

from cdsynth.jobs import run_job
from cdsynth.shards import build_synthetic_shards

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: build_synthetic_shards(
        smk.input.manifest.rsplit("/", 1)[0],
        smk.input.tokenizer,
        smk.output[0],
        block_size=smk.params.block_size,
        blocks_per_shard=smk.params.blocks_per_shard,
    ),
)
