"""Snakemake job: raw source files -> train / seed / test Arrow splits."""

from pathlib import Path

from cdsynth.data.corpus import build_corpus
from cdsynth.jobs import run_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: build_corpus(
        smk.params.sources,
        Path(smk.output.train).parent,
        split_seed=smk.params.split_seed,
        seed_fraction=smk.params.seed_fraction,
        test_fraction=smk.params.test_fraction,
        chunk_words=smk.params.chunk_words,
    ),
)
