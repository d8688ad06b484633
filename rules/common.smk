# Shared by every stage: where outputs live (each path defined once here), the values the config defines,
# job resources and the rules' code digests.

from pathlib import Path

from cdsynth.spec.code_digest import code_digest
from cdsynth.spec.experiments import experiments_of, good_of
from cdsynth.spec.schedule import checkpoint_steps, evaluated_steps

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
TOKENIZER = f"{RESULTS}/tokenizer"

GOOD = good_of(config)
EXPERIMENTS = experiments_of(config)
BASELINE = next(name for name, experiment in EXPERIMENTS.items() if experiment.corpus is None)
SAVED_STEPS = checkpoint_steps(config["train"]["steps"], config["train"]["save_every"])
# Checkpoints the BabyLM suite scores and the mean-max takes its best from (the paper: all of them).
EVALUATED_STEPS = evaluated_steps(SAVED_STEPS, config["eval"]["stride"])
MIX_MODEL = config["mix"]["model"]


def code_of(script):
    """The rule's `code` param: a digest of its script and the code it imports (docs/configuration.md)."""
    return code_digest(Path(workflow.basedir) / "scripts" / script)


def job_resources(group):
    """Snakemake `resources:` for a rule group (threads are set separately).

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


def corpus_split(split):
    return f"{RESULTS}/corpus/{split}.arrow"


def token_shards(split):
    return f"{RESULTS}/tokens/{split}"


def run_dir(run, seed):
    """A training run: step<N>/ checkpoints, metrics.csv, curve.png."""
    return f"{RESULTS}/models/{run}/seed{seed}"


def mixture_run(model, good, corpus, mixing):
    """A mixture run's path under models/, named by what defines it, never by an experiment's name."""
    return f"{model}/mix/{good}/{corpus}/{mixing}"


def experiment_run(name):
    """The run path under models/ (without the seed) of an experiment."""
    experiment = EXPERIMENTS[name]
    if experiment.corpus is None:
        return MIX_MODEL
    return mixture_run(MIX_MODEL, GOOD.slug, experiment.corpus.name, experiment.mixture.slug)


def corpus_dir(name, good=GOOD.slug):
    """A synthetic corpus made from GOOD: shard-NNNNN.arrow, manifest.json and tokens/."""
    return f"{RESULTS}/synth/{good}/{name}"


def eval_dir(run, seed):
    """A run's evaluations: one step<N>/ directory per checkpoint."""
    return f"{RESULTS}/eval/{run}/seed{seed}"


def experiment_dir(name):
    return f"{RESULTS}/experiments/{name}"


def table_file(name, ext):
    return f"{RESULTS}/table_{name}.{ext}"


def figure_file(name, kind, ext):
    return f"{RESULTS}/figures/{name}_{kind}.{ext}"


def corpora_file(table, name):
    """A table's Corpora section: its corpora's statistics and samples side by side."""
    return f"{RESULTS}/corpora/{table}/{name}"
