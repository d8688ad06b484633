# Evaluations -> per-experiment mean-max and bootstrap replicates -> tables (CSV + Markdown) and figures.


rule experiment_summary:
    input:
        lambda wc: PLAN.summaries[wc.experiment],
    output:
        summary=summary_file("{experiment}"),
        replicates=replicates_file("{experiment}"),
    log:
        f"{LOGS}/experiment_summary/{{experiment}}.log",
    benchmark:
        f"{BENCH}/experiment_summary/{{experiment}}.tsv"
    wildcard_constraints:
        experiment=r"[^/]+",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["report"]["threads"]
    resources:
        **job_resources("report"),
    params:
        code=code_of("summarize_experiment.py"),
        # The input's evaluations are the seeds', in this order.
        seeds=config["mix"]["seeds"],
        data_dir=config["eval"]["data_dir"],
        samples=config["stats"]["bootstrap_samples"],
        seed=config["stats"]["bootstrap_seed"],
    script:
        "../scripts/summarize_experiment.py"


rule table:
    input:
        # The rows' summaries, and runs by row and seed, in the order of the params' experiments and seeds.
        summaries=lambda wc: [summary_file(name) for name in PLAN.tables[wc.table]],
        runs=lambda wc: [run for name in PLAN.tables[wc.table] for run in PLAN.experiment_runs[name].values()],
        # Built with the table, so that `snakemake --report` after a table target finds the section it
        # reports; a statistics edit therefore also rewrites the table (seconds), never a training.
        corpora=lambda wc: [PLAN.corpora_sections[wc.table]] if wc.table in PLAN.corpora_sections else [],
        budget=budget_table("{table}", "csv"),  # built with the table, for the report too
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
        table="|".join(PLAN.tables) or "no-tables",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["report"]["threads"]
    resources:
        **job_resources("report"),
    params:
        code=code_of("write_table.py"),
        experiments=lambda wc: PLAN.tables[wc.table],
        seeds=config["mix"]["seeds"],
        baseline=PLAN.baseline,
        confidence=config["stats"]["confidence"],
        tasks=config["stats"]["tasks"],
        gain_tasks=config["stats"]["relative_gain_tasks"],
    script:
        "../scripts/write_table.py"


rule budget_table:
    input:
        lambda wc: PLAN.table_budgets(wc.table),
    output:
        csv=report(
            budget_table("{table}", "csv"),
            caption="../workflow/report/budget.rst",
            category="Tables",
            labels=lambda wc: {"table": wc.table, "format": "word budget"},
        ),
        markdown=budget_table("{table}", "md"),
    log:
        f"{LOGS}/budget_table/{{table}}.log",
    benchmark:
        f"{BENCH}/budget_table/{{table}}.tsv"
    wildcard_constraints:
        table="|".join(PLAN.tables) or "no-tables",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["report"]["threads"]
    resources:
        **job_resources("report"),
    params:
        code=code_of("write_budget_table.py"),
        track=PLAN.track,
        experiments=lambda wc: [name for name in PLAN.tables[wc.table] for _ in config["mix"]["seeds"]],
    script:
        "../scripts/write_budget_table.py"


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
        table="|".join(PLAN.tables) or "no-tables",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["report"]["threads"]
    resources:
        **job_resources("report"),
    params:
        code=code_of("plot_ratio_sweep.py"),
        ratios=lambda wc: {name: PLAN.ratios[name] for name in PLAN.tables[wc.table]},
    script:
        "../scripts/plot_ratio_sweep.py"


rule corpora:
    input:
        stats=lambda wc: [
            corpus_stats_file(corpus_dir(PLAN.good.slug, name)) for name in PLAN.table_corpora[wc.table]
        ],
        real=CORPUS_TRAIN_STATS,
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
            corpora_samples("{table}"),
            caption="../workflow/report/corpora_samples.rst",
            category="Corpora",
            labels=lambda wc: {"table": wc.table, "item": "samples side by side"},
        ),
    log:
        f"{LOGS}/corpora/{{table}}.log",
    benchmark:
        f"{BENCH}/corpora/{{table}}.tsv"
    wildcard_constraints:
        table="|".join(PLAN.corpora_sections) or "no-corpora",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["report"]["threads"]
    resources:
        **job_resources("report"),
    params:
        code=code_of("describe_corpora.py"),
        corpora=lambda wc: {name: corpus_dir(PLAN.good.slug, name) for name in PLAN.table_corpora[wc.table]},
    script:
        "../scripts/describe_corpora.py"
