"""The workflow's plan: everything a validated config implies, computed once, by path or by name.

The rules look their params up here and `rule all` takes its targets from here, so what a config makes
can be tested without Snakemake. Torch-free: the Snakefile builds the plan every time it is parsed.
Param values are what Snakemake records to decide reruns: a change to one reruns its jobs for every user.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from cdsynth.spec.decontamination import (
    DECONTAMINATED_TRAIN_STATS,
    decontaminated_corpus,
    decontaminates,
    train_split,
)
from cdsynth.spec.evaluation import Evaluation
from cdsynth.spec.experiments import Experiment, experiments_of, good_of
from cdsynth.spec.mixture import Mixture
from cdsynth.spec.paths import (
    CORPUS_TRAIN_STATS,
    budget_file,
    budget_table,
    checkpoint_dir,
    corpora_samples,
    corpus_dir,
    corpus_split,
    corpus_stats_file,
    eval_dir,
    export_dir,
    figure_file,
    manifest_file,
    mixture_run,
    run_dir,
    synthetic_tokens,
    table_file,
)
from cdsynth.spec.schedule import fixed_steps_of
from cdsynth.spec.sources import Source, downloads
from cdsynth.spec.synthesis import Corpus, Good, backend_for
from cdsynth.spec.training import DataOrder


@dataclass(frozen=True)
class Plan:
    """What the workflow makes for one config; built by `plan_of`."""

    good: Good
    experiments: dict[str, Experiment]
    baseline: str  # the experiment without a corpus, every table's first row
    # The steps every run saves whatever its data; BabyLM marks add steps the trainer finds
    # (cdsynth.spec.schedule), and the evaluation job picks the checkpoints it scores from what was saved.
    saved_steps: list[int]
    downloads: dict[str, dict]  # cache path -> {url, sha256, member}
    corpus_sources: dict[str, dict]  # source name -> its fields (`Source`), its files resolved
    evaluation: dict[str, Any]  # how every checkpoint is scored (`Evaluation`)
    corpora: dict[str, dict]  # synthetic corpus name -> its synthesis params
    amateur_runs: dict[str, str]  # corpus name -> the run whose checkpoint is its amateur
    shards: list[str]  # a synthetic corpus's shard numbers
    # corpus name -> the manifest its training documents are made from: its own, or with
    # synth.decontaminate its filtered copy's
    token_sources: dict[str, str]
    decontaminated: list[str]  # the filtered copies the config makes (none unless it decontaminates)
    train_split: str  # the real train split the tokenizer and train token shards are made from
    baseline_runs: dict[str, dict]  # run directory -> its training params
    mixture_runs: dict[str, dict]  # run directory -> its training params, with the mixture
    experiment_runs: dict[str, dict[int, str]]  # experiment -> seed -> run directory
    # budget file -> {order (what orders its data), synthetic (tokens dir or None), ancillary (the runs and
    # steps of the models whose output it trains on)}
    budgets: dict[str, dict]
    budget_files: dict[str, str]  # run directory -> its budget file
    track: str  # the BabyLM track every run's budget is checked against

    def table_budgets(self, table: str) -> list[str]:
        """The budget files of a table's runs, by row and seed."""
        return [
            self.budget_files[run]
            for name in self.tables[table]
            for run in self.experiment_runs[name].values()
        ]

    evaluations: dict[str, str]  # evaluation directory -> the run directory it scores
    model_names: dict[str, str]  # evaluation directory -> its run's name in the official BabyLM files
    # export directory -> the files its model cards are made from: run, budget, eval and (a mixture's)
    # synthetic corpus manifest
    exports: dict[str, dict[str, str]]
    summaries: dict[str, list[str]]  # experiment -> the evaluations it summarizes, one per seed
    tables: dict[str, list[str]]  # table -> its rows (experiments), the baseline first
    ratios: dict[str, float]  # experiment -> its synthetic ratio (the baseline's 0)
    swept_tables: list[str]  # tables that get a ratio-sweep figure
    table_corpora: dict[str, list[str]]  # table -> the synthetic corpora of its rows
    corpora_sections: dict[str, str]  # table -> its Corpora section, for tables with corpora
    warnings: list[str]  # what the user is told when the workflow loads

    @property
    def corpus_files(self) -> list[str]:
        """Every file the real corpus is built from."""
        return [
            path for source in self.corpus_sources.values() for path in (*source["train"], *source["test"])
        ]

    def split_source(self, split: str) -> str:
        """The corpus split a split's token shards are made from (the train split may be filtered)."""
        return self.train_split if split == "train" else corpus_split(split)

    @property
    def manifests(self) -> list[str]:
        """Every synthetic corpus, by the manifest that completes it."""
        return [manifest_file(corpus_dir(self.good.slug, name)) for name in self.corpora]

    @property
    def descriptions(self) -> list[str]:
        """Every synthetic corpus's statistics (its dataset card is made with them)."""
        return [corpus_stats_file(corpus_dir(self.good.slug, name)) for name in self.corpora]

    @property
    def targets(self) -> list[str]:
        """What `rule all` makes: the baseline runs and their evaluations, every corpus (and its filtered
        copy), the real train split's description, every report."""
        return [
            *self.baseline_runs,
            *self.manifests,
            *self.decontaminated,
            CORPUS_TRAIN_STATS,
            *(evaluation for evaluation, run in self.evaluations.items() if run in self.baseline_runs),
            *(table_file(name, "csv") for name in self.tables),
            *(figure_file(name, "ratio_sweep", "png") for name in self.swept_tables),
            *self.corpora_sections.values(),
            *(budget_table(name, "csv") for name in self.tables),
        ]


def plan_of(config: dict[str, Any]) -> Plan:
    """The plan of a validated config (cdsynth.spec.config.validate_config)."""
    good = good_of(config)
    experiments = experiments_of(config)
    baseline = next(name for name, experiment in experiments.items() if experiment.corpus is None)
    saved_steps = fixed_steps_of(config["train"])
    return Plan(
        good=good,
        experiments=experiments,
        baseline=baseline,
        saved_steps=saved_steps,
        evaluation=asdict(Evaluation.of(config["eval"], config["shards"]["block_size"])),
        track=config["babylm"]["track"],
        **sources_of(config),
        **synthesis_of(config, good, experiments),
        **training_of(config, good, experiments),
        **tables_of(config, experiments, baseline),
    )


def sources_of(config: dict[str, Any]) -> dict[str, Any]:
    """The real corpus's sources, every file resolved now: a path or glob that matches nothing stops the
    workflow as it loads. Relative paths are the working directory's, as Snakemake's."""
    sources = config["corpus"]["sources"]
    return {
        "downloads": downloads(sources),
        "corpus_sources": {name: asdict(Source.resolved(source)) for name, source in sources.items()},
    }


def synthesis_of(config: dict[str, Any], good: Good, experiments: dict[str, Experiment]) -> dict[str, Any]:
    """The synthetic corpora, their amateurs' runs and their shards."""
    # Corpora by name; the name is derived from the scoring and the amateur, so identical specs share files.
    corpora = {e.corpus.name: e.corpus for e in experiments.values() if e.corpus is not None}
    amateur_runs = {
        name: run_dir(*corpus.amateur.run_of(good))
        for name, corpus in corpora.items()
        if corpus.amateur is not None and corpus.amateur.kind != "dropout"
    }
    backends = {
        name: backend_for(config["synth"]["backend"], corpus.amateur_dropout)
        for name, corpus in corpora.items()
    }
    return {
        "corpora": {
            name: synthesis_params(config, corpus, good, amateur_runs.get(name), backends[name])
            for name, corpus in corpora.items()
        },
        "amateur_runs": amateur_runs,
        "shards": [f"{index:05d}" for index in range(config["synth"]["shards"])],
        **decontamination_of(config, good, list(corpora)),
        "warnings": [
            f"synthetic corpus {name}: vLLM has no attention dropout, so its {corpora[name].amateur} "
            "amateur runs on the torch engine"
            for name, backend in backends.items()
            if backend != config["synth"]["backend"]
        ],
    }


def decontamination_of(config: dict[str, Any], good: Good, names: list[str]) -> dict[str, Any]:
    """Which data the decontamination filter makes copies of (`cdsynth.spec.decontamination`), and what
    is trained on: with the filter off, the real train split and each corpus's own manifest."""
    synthetic = decontaminates(config, "synth")
    sources = {name: corpus_dir(good.slug, name) for name in names}
    if synthetic:
        sources = {name: decontaminated_corpus(corpus) for name, corpus in sources.items()}
    split = train_split(config)
    return {
        "token_sources": {name: manifest_file(corpus) for name, corpus in sources.items()},
        "decontaminated": [
            *([DECONTAMINATED_TRAIN_STATS] if decontaminates(config, "corpus") else []),
            *(manifest_file(corpus) for corpus in sources.values() if synthetic),
        ],
        "train_split": split,
    }


def synthesis_params(
    config: dict[str, Any], corpus: Corpus, good: Good, amateur_run: str | None, backend: str
) -> dict[str, Any]:
    """The whole definition of a corpus: scoring, amateur, protocol, GOOD and the backend that runs it."""
    return {
        "scoring": corpus.scoring.as_dict(),
        "amateur": corpus.amateur and str(corpus.amateur),
        "amateur_dir": amateur_run and checkpoint_dir(amateur_run, corpus.amateur.step),
        "amateur_dropout": corpus.amateur_dropout,
        "good": asdict(good),
        # Not the filter's switch: a corpus is generated alike with it on or off.
        **{
            key: value
            for key, value in config["synth"].items()
            if key not in ("good", "tensor_parallel", "decontaminate")
        },
        "backend": backend,
    }


def training_of(config: dict[str, Any], good: Good, experiments: dict[str, Experiment]) -> dict[str, Any]:
    """Every run (a run is a path under models/ and a seed), what defines it, and its evaluation."""
    model, seeds = config["mix"]["model"], config["mix"]["seeds"]
    run_paths = {name: experiment_run(experiment, model, good) for name, experiment in experiments.items()}
    baseline_runs = [(run, seed) for run, run_seeds in config["baseline"].items() for seed in run_seeds]
    mixture_runs = {
        (run_paths[name], seed): experiment
        for name, experiment in experiments.items()
        if experiment.mixture is not None
        for seed in seeds
    }
    budgets = {
        budget_file(run, seed): budget_params(train_params(config, run, seed)) for run, seed in baseline_runs
    } | {
        budget_file(run, seed): budget_params(
            train_params(config, model, seed, experiment.mixture), experiment.corpus, good
        )
        for (run, seed), experiment in mixture_runs.items()
    }
    return {
        "baseline_runs": {run_dir(run, seed): train_params(config, run, seed) for run, seed in baseline_runs},
        "mixture_runs": {
            run_dir(run, seed): train_params(config, model, seed, experiment.mixture)
            for (run, seed), experiment in mixture_runs.items()
        },
        "budgets": budgets,
        "budget_files": {
            run_dir(run, seed): budget_file(run, seed) for run, seed in [*baseline_runs, *mixture_runs]
        },
        "experiment_runs": {
            name: {seed: run_dir(run, seed) for seed in seeds} for name, run in run_paths.items()
        },
        "evaluations": {eval_dir(*run): run_dir(*run) for run in [*baseline_runs, *mixture_runs]},
        "exports": {
            export_dir(run, seed): export_inputs(
                run, seed, mixture_runs.get((run, seed)), good, decontaminates(config, "synth")
            )
            for run, seed in [*baseline_runs, *mixture_runs]
        },
        "model_names": {eval_dir(run, seed): f"{run}-seed{seed}" for run, seed in baseline_runs}
        | {
            eval_dir(run, seed): f"{model}-{experiment.corpus.name}-{experiment.mixture.slug}-seed{seed}"
            for (run, seed), experiment in mixture_runs.items()
        },
        "summaries": {name: [eval_dir(run, seed) for seed in seeds] for name, run in run_paths.items()},
    }


def export_inputs(
    run: str, seed: int, experiment: Experiment | None, good: Good, decontaminated: bool = False
) -> dict[str, Any]:
    """What a run's export makes its model cards from: the run, its budget and evaluation, and for a
    mixture run the manifest of the synthetic corpus it trained on (its filtered copy's, `decontaminated`)."""
    corpus = []
    if experiment:
        trained = corpus_dir(good.slug, experiment.corpus.name)
        corpus = [manifest_file(decontaminated_corpus(trained) if decontaminated else trained)]
    return {
        "run": run_dir(run, seed),
        "budget": budget_file(run, seed),
        "eval": eval_dir(run, seed),
        "corpus": corpus,
    }


def budget_params(train: dict[str, Any], corpus: Corpus | None = None, good: Good | None = None) -> dict:
    """What a run's budget is counted from: the settings that order its data (`DataOrder`), and for a
    mixture its synthetic tokens and the checkpoints that made them (GOOD; an early or small amateur, a
    dropout amateur being GOOD itself)."""
    order = {spec.name: train.get(spec.name) for spec in fields(DataOrder)}
    if corpus is None:
        return {"order": order, "synthetic": None, "ancillary": []}
    ancillary = [{"role": "good", "run": run_dir(good.model, good.seed), "step": good.step}]
    if corpus.amateur is not None and corpus.amateur.kind != "dropout":
        amateur = {
            "role": "amateur",
            "run": run_dir(*corpus.amateur.run_of(good)),
            "step": corpus.amateur.step,
        }
        ancillary.append(amateur)
    synthetic = synthetic_tokens(corpus_dir(good.slug, corpus.name))
    return {"order": order, "synthetic": synthetic, "ancillary": ancillary}


def experiment_run(experiment: Experiment, model: str, good: Good) -> str:
    """An experiment's run path under models/ (without the seed): the baseline's is the model's own."""
    if experiment.corpus is None:
        return model
    return mixture_run(model, good.slug, experiment.corpus.name, experiment.mixture.slug)


def train_params(
    config: dict[str, Any], model: str, seed: int, mixture: Mixture | None = None
) -> dict[str, Any]:
    """Everything that defines a run: its architecture and seed, the training recipe and, for a mixture
    run, its mixture; nothing else, so that editing another run's settings never reruns it."""
    params = {"arch": config["models"][model], "seed": seed, "block_size": config["shards"]["block_size"]}
    params |= config["train"]
    return params if mixture is None else params | {"mixture": asdict(mixture)}


def tables_of(config: dict[str, Any], experiments: dict[str, Experiment], baseline: str) -> dict[str, Any]:
    """The tables, their figures and their Corpora sections."""
    # Every table starts with the baseline row, which its other rows are compared with.
    tables = {
        name: [baseline] + [row for row in rows if row != baseline] for name, rows in config["tables"].items()
    }
    ratios = {name: e.mixture.ratio if e.mixture else 0.0 for name, e in experiments.items()}
    # The synthetic corpora of each table's rows: the table's Corpora section describes them side by side.
    table_corpora = {
        name: sorted({experiments[row].corpus.name for row in rows if experiments[row].corpus is not None})
        for name, rows in tables.items()
    }
    return {
        "tables": tables,
        "ratios": ratios,
        # Tables whose rows span several synthetic ratios get a ratio-sweep figure too.
        "swept_tables": [name for name, rows in tables.items() if len({ratios[row] for row in rows[1:]}) > 1],
        "table_corpora": table_corpora,
        "corpora_sections": {name: corpora_samples(name) for name, names in table_corpora.items() if names},
    }
