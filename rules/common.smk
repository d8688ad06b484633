# Shared by every stage: where outputs live (cdsynth/spec/paths.py, each path defined once; the
# decontamination filter's copies in cdsynth/spec/decontamination.py), the plan of
# the config (cdsynth/spec/plan.py: what it makes, and every job's params), job resources and the rules'
# code digests. A stage's rules use these and nothing defined in another stage's file.
#
# Rules look their params up in the plan by wildcards, never by `input` or `output`; Snakemake does not
# record a param computed from those, so a change to it would rerun nothing.

from pathlib import Path

from cdsynth.spec.code_digest import code_digest
from cdsynth.spec.paths import (
    BENCH,
    COMPILE_CACHE,
    CORPUS_STATS,
    CORPUS_TRAIN_STATS,
    LOGS,
    TOKENIZER,
    budget_file,
    budget_table,
    corpora_file,
    corpora_samples,
    corpus_card,
    corpus_dir,
    corpus_split,
    corpus_stats_file,
    eval_dir,
    export_dir,
    figure_file,
    manifest_file,
    mixture_run,
    replicates_file,
    run_dir,
    shard_file,
    summary_file,
    synthetic_tokens,
    table_file,
    token_shards,
)
from cdsynth.spec.decontamination import (
    DECONTAMINATED_TRAIN,
    DECONTAMINATED_TRAIN_STATS,
    decontaminated_corpus,
)
from cdsynth.spec.budget import check_planned_budget
from cdsynth.spec.plan import plan_of
from cdsynth.spec.sources import DOWNLOADS
from snakemake.logging import logger

PLAN = plan_of(config)
# A config whose runs would break its BabyLM track stops here, before any job (cdsynth/spec/budget.py).
check_planned_budget(
    PLAN.track,
    PLAN.baseline_runs | PLAN.mixture_runs,
    PLAN.budget_files,
    config["corpus"]["sources"],
    f"{token_shards('train')}/meta.json",
    CORPUS_STATS,
)
# The synthetic corpus `{name}` made from GOOD, as a wildcard pattern: most synthesis rules' directory.
CORPUS = corpus_dir(PLAN.good.slug, "{name}")

for warning in PLAN.warnings:
    logger.warning(warning)


def code_of(script):
    """The rule's `code` param: a digest of its script and the code it imports (docs/configuration.md)."""
    return code_digest(Path(workflow.basedir) / "scripts" / script)


def job_resources(group):
    """Snakemake `resources:` for a rule group of the config's `resources` (threads are set separately).

    A retry gets `attempt` times the runtime: a synthesis shard stopped at its limit starts over, and a
    job that ends just past its limit is marked TIMEOUT by SLURM, its output deleted, however complete.
    """
    spec = config["resources"][group]
    return {
        "mem_mb": spec["mem_mb"],
        "runtime": lambda wildcards, attempt: spec["runtime"] * attempt,
        "gpus": spec["gpus"],
        "gpu": spec["gpus"],  # the name the SLURM executor plugin turns into a GPU request
    }
