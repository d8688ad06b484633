"""Snakemake job: one run's word budget, counted before it trains; a run over its track stops here.

The track is read from the config, not a param: it checks a run and defines nothing, so changing it
reruns no job (the workflow checks every counted budget against it when it loads).
"""

from cdsynth.jobs import run_job
from cdsynth.spec.paths import run_dir
from cdsynth.spec.training import DataOrder
from cdsynth.train.budget import write_budget

smk = snakemake  # noqa: F821 (injected by Snakemake)
budget = smk.params.budget
run_job(
    smk,
    lambda: write_budget(
        smk.output[0],
        smk.config["babylm"]["track"],
        run=run_dir(smk.wildcards.run, smk.wildcards.seed),
        order=DataOrder.of(budget["order"]),
        train_shards=smk.input.train,
        tokenizer_dir=smk.input.tokenizer,
        corpus_stats=smk.input.corpus_stats,
        synthetic_shards=smk.input.synthetic or None,
        ancillary=budget["ancillary"],
    ),
)
