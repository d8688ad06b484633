"""Snakemake job: train split -> BPE tokenizer (the config's recipe), saved as a HF fast tokenizer."""

from cdsynth.data.tokenizer import train_tokenizer
from cdsynth.jobs import run_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
run_job(
    smk,
    lambda: train_tokenizer(
        smk.input[0],
        smk.output[0],
        recipe=smk.params.recipe,
        vocab_size=smk.params.vocab_size,
        max_sentences=smk.params.max_sentences,
        seed=smk.params.seed,
        threads=smk.threads,
    ),
)
