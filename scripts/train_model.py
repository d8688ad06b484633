"""Snakemake job: train one model from token shards (plus synthetic ones for a mixture); GPUs -> DDP."""

from cdsynth.jobs import run_job
from cdsynth.spec.training import TrainSettings
from cdsynth.train.launch import launch

smk = snakemake  # noqa: F821 (injected by Snakemake)
recipe = dict(smk.params.train)
arch, seed = recipe.pop("arch"), recipe.pop("seed")
run_job(
    smk,
    lambda: launch(
        TrainSettings.of(recipe, arch, seed, threads=smk.threads),
        gpus=smk.resources.gpus,
        train_shards=smk.input.train,
        valid_shards=smk.input.valid,
        tokenizer_dir=smk.input.tokenizer,
        synthetic_shards=smk.input.get("synthetic"),
        out_dir=smk.output.run,
    ),
)
