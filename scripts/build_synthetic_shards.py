"""Snakemake job: a synthetic corpus -> training documents, samples split on BOS/EOS, a share held out."""

from cdsynth.jobs import run_job
from cdsynth.synth.tokens import build_synthetic_shards

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: build_synthetic_shards(
        smk.input.manifest.rsplit("/", 1)[0],
        smk.input.tokenizer,
        smk.output[0],
        tokens_per_shard=smk.params.tokens_per_shard,
        holdout=smk.params.holdout,
        holdout_seed=smk.params.holdout_seed,
    ),
)
