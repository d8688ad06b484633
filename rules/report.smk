# Evaluations -> per-experiment mean-max and bootstrap replicates -> tables (CSV + Markdown) and figures.

# Every table starts with the baseline row, which its other rows are compared with.
TABLES = {
    name: [BASELINE] + [row for row in rows if row != BASELINE] for name, rows in config["tables"].items()
}
RUNS = {
    name: {seed: run_dir(experiment_run(name), seed) for seed in config["mix"]["seeds"]}
    for name in EXPERIMENTS
}
RATIOS = {name: e.mixture.ratio if e.mixture else 0.0 for name, e in EXPERIMENTS.items()}
# Tables whose rows span several synthetic ratios get a ratio-sweep figure too.
SWEPT_TABLES = [name for name, rows in TABLES.items() if len({RATIOS[row] for row in rows[1:]}) > 1]
# The synthetic corpora of each table's rows: the table's Corpora section describes them side by side.
TABLE_CORPORA = {
    name: sorted({EXPERIMENTS[row].corpus.name for row in rows if EXPERIMENTS[row].corpus is not None})
    for name, rows in TABLES.items()
}
CORPORA_SECTIONS = {
    name: corpora_file(name, "samples.html") for name, corpora in TABLE_CORPORA.items() if corpora
}
REPORTS = (
    [table_file(name, "csv") for name in TABLES]
    + [figure_file(name, "ratio_sweep", "png") for name in SWEPT_TABLES]
    + list(CORPORA_SECTIONS.values())
)


rule experiment_summary:
    input:
        lambda wc: [eval_dir(experiment_run(wc.experiment), seed) for seed in config["mix"]["seeds"]],
    output:
        summary=f"{experiment_dir('{experiment}')}/summary.json",
        replicates=f"{experiment_dir('{experiment}')}/replicates.npz",
    log:
        f"{LOGS}/experiment_summary/{{experiment}}.log",
    benchmark:
        f"{BENCH}/experiment_summary/{{experiment}}.tsv"
    wildcard_constraints:
        experiment=r"[^/]+",
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpus=0,
    params:
        code=code_of("summarize_experiment.py"),
        evaluations=lambda wc: {
            seed: {
                step: f"{eval_dir(experiment_run(wc.experiment), seed)}/step{step}"
                for step in EVALUATED_STEPS
            }
            for seed in config["mix"]["seeds"]
        },
        data_dir=config["eval"]["data_dir"],
        samples=config["stats"]["bootstrap_samples"],
        seed=config["stats"]["bootstrap_seed"],
    script:
        "../scripts/summarize_experiment.py"


rule table:
    input:
        summaries=lambda wc: [f"{experiment_dir(name)}/summary.json" for name in TABLES[wc.table]],
        runs=lambda wc: [run for name in TABLES[wc.table] for run in RUNS[name].values()],
        # Built with the table, so that `snakemake --report` after a table target finds the section it
        # reports; a statistics edit therefore also rewrites the table (seconds), never a training.
        corpora=lambda wc: [CORPORA_SECTIONS[wc.table]] if wc.table in CORPORA_SECTIONS else [],
    output:
        csv=report(
            table_file("{table}", "csv"),
            caption="../workflow/report/table.rst",
            category="Tables",
            labels=lambda wc: {"table": wc.table, "format": "CSV"},
        ),
        markdown=table_file("{table}", "md"),
        gains=[
            report(
                figure_file("{table}", "gains", "png"),
                caption="../workflow/report/gains.rst",
                category="Figures",
                labels=lambda wc: {"table": wc.table, "figure": "gains over the baseline"},
            ),
            figure_file("{table}", "gains", "pdf"),
        ],
        curves=[
            report(
                figure_file("{table}", "curves", "png"),
                caption="../workflow/report/curves.rst",
                category="Figures",
                labels=lambda wc: {"table": wc.table, "figure": "training curves"},
            ),
            figure_file("{table}", "curves", "pdf"),
        ],
    log:
        f"{LOGS}/table/{{table}}.log",
    benchmark:
        f"{BENCH}/table/{{table}}.tsv"
    wildcard_constraints:
        table="|".join(TABLES) or "no-tables",
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpus=0,
    params:
        code=code_of("write_table.py"),
        experiments=lambda wc: TABLES[wc.table],
        baseline=BASELINE,
        summary_dirs=lambda wc: {name: experiment_dir(name) for name in TABLES[wc.table]},
        metrics=lambda wc: {
            name: {seed: f"{run}/metrics.csv" for seed, run in RUNS[name].items()}
            for name in TABLES[wc.table]
        },
        confidence=config["stats"]["confidence"],
        tasks=config["stats"]["tasks"],
        gain_tasks=config["stats"]["relative_gain_tasks"],
    script:
        "../scripts/write_table.py"


rule ratio_sweep:
    input:
        table_file("{table}", "csv"),
    output:
        png=report(
            figure_file("{table}", "ratio_sweep", "png"),
            caption="../workflow/report/ratio_sweep.rst",
            category="Figures",
            labels=lambda wc: {"table": wc.table, "figure": "synthetic ratio sweep"},
        ),
        pdf=figure_file("{table}", "ratio_sweep", "pdf"),
    log:
        f"{LOGS}/ratio_sweep/{{table}}.log",
    benchmark:
        f"{BENCH}/ratio_sweep/{{table}}.tsv"
    wildcard_constraints:
        table="|".join(TABLES) or "no-tables",
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpus=0,
    params:
        code=code_of("plot_ratio_sweep.py"),
        ratios=lambda wc: {name: RATIOS[name] for name in TABLES[wc.table]},
    script:
        "../scripts/plot_ratio_sweep.py"


rule corpora:
    input:
        stats=lambda wc: [f"{corpus_dir(name)}/stats.json" for name in TABLE_CORPORA[wc.table]],
        tokenizer=TOKENIZER,
    output:
        table=report(
            corpora_file("{table}", "statistics.csv"),
            caption="../workflow/report/corpora_table.rst",
            category="Corpora",
            labels=lambda wc: {"table": wc.table, "item": "statistics"},
        ),
        figure=[
            report(
                figure_file("{table}", "corpora", "png"),
                caption="../workflow/report/corpora_figure.rst",
                category="Corpora",
                labels=lambda wc: {"table": wc.table, "item": "statistics figure"},
            ),
            figure_file("{table}", "corpora", "pdf"),
        ],
        samples=report(
            corpora_file("{table}", "samples.html"),
            caption="../workflow/report/corpora_samples.rst",
            category="Corpora",
            labels=lambda wc: {"table": wc.table, "item": "samples side by side"},
        ),
    log:
        f"{LOGS}/corpora/{{table}}.log",
    benchmark:
        f"{BENCH}/corpora/{{table}}.tsv"
    wildcard_constraints:
        table="|".join(CORPORA_SECTIONS) or "no-corpora",
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpus=0,
    params:
        code=code_of("describe_corpora.py"),
        corpora=lambda wc: {name: corpus_dir(name) for name in TABLE_CORPORA[wc.table]},
    script:
        "../scripts/describe_corpora.py"
