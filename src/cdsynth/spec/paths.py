"""Where the workflow's outputs live, relative to its working directory: each path is defined once, here.

Torch-free: the Snakefile's rules and the plan (cdsynth.spec.plan) name their files with these. A helper
takes `{wildcard}` patterns as well as values, so a rule's output and a target are spelled alike.
"""

from __future__ import annotations

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
TOKENIZER = f"{RESULTS}/tokenizer"
COMPILE_CACHE = f"{RESULTS}/cache/torchinductor"
CORPUS_STATS = f"{RESULTS}/corpus/stats.json"
# The real train split's description (contamination), beside the build's own stats.json: a job of its own,
# so that describing the split never rewrites the splits every model is trained from.
CORPUS_TRAIN_STATS = f"{RESULTS}/corpus/train_stats.json"


def corpus_split(split: str) -> str:
    return f"{RESULTS}/corpus/{split}.arrow"


def token_shards(split: str) -> str:
    return f"{RESULTS}/tokens/{split}"


def run_dir(run: str, seed: int | str) -> str:
    """A training run: step<N>/ checkpoints, metrics.csv, curve.png."""
    return f"{RESULTS}/models/{run}/seed{seed}"


def checkpoint_dir(run: str, step: int | str) -> str:
    """A run's checkpoint, or an evaluation's scores of it, from the run's (or evaluation's) directory."""
    return f"{run}/step{step}"


def metrics_file(run: str) -> str:
    """A run's training and validation losses, from its directory."""
    return f"{run}/metrics.csv"


def mixture_run(model: str, good: str, corpus: str, mixing: str) -> str:
    """A mixture run's path under models/, named by what defines it, never by an experiment's name."""
    return f"{model}/mix/{good}/{corpus}/{mixing}"


def corpus_dir(good: str, name: str) -> str:
    """A synthetic corpus made from GOOD (its slug): shards, manifest, description and tokens/."""
    return f"{RESULTS}/synth/{good}/{name}"


def shard_file(corpus: str, shard: str) -> str:
    return f"{corpus}/shard-{shard}.arrow"


def manifest_file(corpus: str) -> str:
    return f"{corpus}/manifest.json"


def corpus_stats_file(corpus: str) -> str:
    return f"{corpus}/stats.json"


def corpus_card(corpus: str) -> str:
    return f"{corpus}/README.md"


def synthetic_tokens(corpus: str) -> str:
    return f"{corpus}/tokens"


def budget_file(run: str, seed: int | str) -> str:
    """A run's word budget: its data and the words it sees, against the config's BabyLM track."""
    return f"{RESULTS}/budget/{run}/seed{seed}/budget.json"


def budget_table(table: str, ext: str) -> str:
    """The word budgets of a table's runs, beside the table."""
    return f"{RESULTS}/budget_{table}.{ext}"


def eval_dir(run: str, seed: int | str) -> str:
    """A run's evaluations: one step<N>/ directory per checkpoint, and `EVALUATED_FILE` listing them."""
    return f"{RESULTS}/eval/{run}/seed{seed}"


# In an evaluation directory: the evaluated checkpoints, each as its checkpoint.json records it.
EVALUATED_FILE = "checkpoints.json"


def export_dir(run: str, seed: int | str) -> str:
    """A run as a git repository for the Hugging Face Hub: main and one branch per BabyLM mark."""
    return f"{RESULTS}/export/{run}/seed{seed}"


def experiment_dir(name: str) -> str:
    return f"{RESULTS}/experiments/{name}"


def summary_file(name: str) -> str:
    return f"{experiment_dir(name)}/summary.json"


def replicates_file(name: str) -> str:
    return f"{experiment_dir(name)}/replicates.npz"


def table_file(name: str, ext: str) -> str:
    return f"{RESULTS}/table_{name}.{ext}"


def figure_file(name: str, kind: str, ext: str) -> str:
    return f"{RESULTS}/figures/{name}_{kind}.{ext}"


def corpora_file(table: str, name: str) -> str:
    """A table's Corpora section: its corpora's statistics and samples side by side."""
    return f"{RESULTS}/corpora/{table}/{name}"


def corpora_samples(table: str) -> str:
    """A table's Corpora section as the report links it: the samples page, made with its other files."""
    return corpora_file(table, "samples.html")
