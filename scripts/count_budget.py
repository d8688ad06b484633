"""Snakemake job: one run's word budget, counted before it trains; a run over its track stops here."""

from cdsynth.jobs import run_job
from cdsynth.spec.paths import run_dir
from cdsynth.spec.training import TrainSettings
from cdsynth.train.budget import write_budget

smk = snakemake  # noqa: F821 (injected by Snakemake)
budget = smk.params.budget
recipe = dict(budget["train"])
arch, seed = recipe.pop("arch"), recipe.pop("seed")
run_job(
    smk,
    lambda: write_budget(
        smk.output[0],
        run=run_dir(smk.wildcards.run, smk.wildcards.seed),
        cfg=TrainSettings.of(recipe, arch, seed),
        track=smk.params.track,
        train_shards=smk.input.train,
        tokenizer_dir=smk.input.tokenizer,
        corpus_stats=smk.input.corpus_stats,
        synthetic_shards=smk.input.synthetic or None,
        ancillary=budget["ancillary"],
    ),
)
