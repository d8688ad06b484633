# Shared helpers: where each output lives and the small per-job param dicts derived from the config.

from pathlib import Path

from cdsynth.babylm import TASK_DIRS, task_dir
from cdsynth.code_digest import code_digest
from cdsynth.config import amateur_of
from cdsynth.corpus import expand_paths
from cdsynth.download import local_name
from cdsynth.errors import ConfigError
from cdsynth.corpus_spec import Scoring, backend_for, corpus_name
from cdsynth.schedule import checkpoint_steps
from snakemake.logging import logger

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"


def download_target(entry):
    return f"resources/downloads/{local_name(entry['url'], entry.get('member'))}"


def collect_downloads(sources):
    """Cache path -> download entry; two different downloads may not share a cache file name."""
    downloads = {}
    for name, source in sources.items():
        for split in ("train", "test"):
            for entry in source.get(split, []):
                if not isinstance(entry, dict):
                    continue
                target = download_target(entry)
                known = downloads.setdefault(target, entry)
                if (known["url"], known.get("member")) != (entry["url"], entry.get("member")):
                    raise ConfigError(
                        f"corpus.sources.{name}.{split}: {entry['url']} would be cached as {target}, "
                        "like another download; give them files with different names"
                    )
    return downloads


DOWNLOADS = collect_downloads(config["corpus"]["sources"])


def source_files(entries):
    """Concrete files for a source's entries; a path or glob matching nothing fails here, before any job."""
    files = []
    for entry in entries:
        if isinstance(entry, dict):
            files.append(download_target(entry))
        else:
            files.extend(str(path) for path in expand_paths([entry]))
    return files


CORPUS_SOURCES = {
    name: {
        "format": source["format"],
        "units": source.get("units", "chunks"),
        "max_words": source.get("max_words"),
        "train": source_files(source["train"]),
        "test": source_files(source.get("test", [])),
    }
    for name, source in config["corpus"]["sources"].items()
}


def code_of(script):
    """The rule's `code` param: a digest of its script and the package code it imports (README)."""
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


def model_dir(model, seed):
    return f"{RESULTS}/models/{model}/seed{seed}"


def saved_steps():
    """The steps at which every run saves (and evaluates) a checkpoint."""
    return checkpoint_steps(config["train"]["steps"], config["train"]["save_every"])


GOOD = config["synth"]["good"]
GOOD_RUN = model_dir(GOOD["model"], GOOD["seed"])
GOOD_ID = f"{GOOD['model']}-seed{GOOD['seed']}-step{GOOD['step']}"
SYNTH_ROOT = f"{RESULTS}/synth/{GOOD_ID}"


def scoring_of(spec):
    return Scoring(**{key: value for key, value in spec.items() if key != "amateur"})


def amateur_in(spec):
    """The corpus's amateur, a small one completed with GOOD's seed and step; None without one."""
    return amateur_of(spec, config) if "amateur" in spec else None


def corpus_of(spec):
    return corpus_name(scoring_of(spec), amateur_in(spec))


# Corpora by name; the name is derived from the scoring parameters, so identical specs share files.
SYNTH_CORPORA = {
    corpus_of(experiment["corpus"]): experiment["corpus"]
    for experiment in config["experiments"].values()
    if experiment.get("corpus")
}


def synth_shards(name):
    return [f"{SYNTH_ROOT}/{name}/shard-{index:05d}.arrow" for index in range(config["synth"]["shards"])]


def synth_manifests():
    return [f"{SYNTH_ROOT}/{name}/manifest.json" for name in SYNTH_CORPORA]


def amateur_source(spec):
    """(training run, checkpoint directory, attention dropout) of a corpus's amateur."""
    amateur = amateur_in(spec)
    if amateur is None:
        return None, None, None
    if amateur.kind == "dropout":
        return None, None, amateur.dropout
    run = GOOD_RUN if amateur.kind == "early" else model_dir(amateur.model, amateur.seed)
    return run, f"{run}/step{amateur.step}", None


def synth_params(name):
    """The whole definition of one corpus: scoring, amateur, protocol, GOOD and the backend that runs it."""
    spec = SYNTH_CORPORA[name]
    _, amateur_dir, dropout = amateur_source(spec)
    protocol = {key: value for key, value in config["synth"].items() if key not in ("good", "tensor_parallel")}
    return {
        "scoring": scoring_of(spec).as_dict(),
        "amateur": str(amateur_in(spec)) if "amateur" in spec else None,
        "amateur_dir": amateur_dir,
        "amateur_dropout": dropout,
        "good": GOOD,
        **protocol,
        "backend": backend_for(config["synth"]["backend"], dropout),
    }


for name, spec in SYNTH_CORPORA.items():
    if config["synth"]["backend"] != backend_for(config["synth"]["backend"], amateur_source(spec)[2]):
        logger.warning(
            f"synthetic corpus {name}: vLLM has no attention dropout, so its {spec['amateur']} amateur "
            "runs on the torch engine"
        )


# Evaluation data: a missing task directory stops the workflow here, naming it.
for task in TASK_DIRS:
    task_dir(config["eval"]["data_dir"], task)


def eval_dir(run, seed):
    """A run's evaluations: one step<N>/ directory per checkpoint."""
    return f"{RESULTS}/eval/{run}/seed{seed}"


def baseline_runs():
    return [model_dir(model, seed) for model, seeds in config["baseline"].items() for seed in seeds]


def baseline_evaluations():
    return [eval_dir(model, seed) for model, seeds in config["baseline"].items() for seed in seeds]


# Experiments: the baseline runs, or one mixture run per seed named by what defines it (GOOD, corpus,
# share, rounding), so renaming an experiment or listing it in two tables never retrains anything.
MIX = config["mix"]
EXPERIMENTS = config["experiments"]
BASELINE = next(name for name, experiment in EXPERIMENTS.items() if not experiment.get("corpus"))
# Every table starts with the baseline row, which its other rows are compared with.
TABLES = {name: [BASELINE] + [row for row in rows if row != BASELINE] for name, rows in config["tables"].items()}


def ratio_of(name):
    return EXPERIMENTS[name].get("ratio", MIX["ratio"])


def experiment_run(name):
    """The run path under results/models/ (without the seed) of an experiment."""
    if name == BASELINE:
        return MIX["model"]
    mixing = f"r{ratio_of(name):g}" + ("-paper" if MIX["rounding"] == "paper" else "")
    return f"{MIX['model']}/mix/{GOOD_ID}/{corpus_of(EXPERIMENTS[name]['corpus'])}/{mixing}"


def experiment_evaluations(name):
    """{seed: {step: eval dir}} of an experiment's checkpoints."""
    run = experiment_run(name)
    return {seed: {step: f"{eval_dir(run, seed)}/step{step}" for step in saved_steps()} for seed in MIX["seeds"]}


def experiment_runs(name):
    """{seed: training run directory} of an experiment."""
    return {seed: model_dir(experiment_run(name), seed) for seed in MIX["seeds"]}


def experiment_metrics(name):
    """{seed: metrics.csv} of an experiment's runs."""
    return {seed: f"{run}/metrics.csv" for seed, run in experiment_runs(name).items()}


def experiment_dir(name):
    return f"{RESULTS}/experiments/{name}"


def swept_tables():
    """Tables whose experiments span several synthetic shares get a ratio-sweep figure."""
    shares = {name: {ratio_of(row) for row in rows if row != BASELINE} for name, rows in TABLES.items()}
    return [name for name, ratios in shares.items() if len(ratios) > 1]


def all_results():
    """Every table (its job also draws the table's figures) and every ratio sweep."""
    tables = [f"{RESULTS}/table_{name}.csv" for name in TABLES]
    return tables + [f"{RESULTS}/figures/{name}_ratio_sweep.png" for name in swept_tables()]
