# Evaluations -> per-experiment mean-max and bootstrap replicates -> tables (CSV + Markdown) and figures.


rule experiment_summary:
    input:
        lambda wc: [eval_dir(experiment_run(wc.experiment), seed) for seed in MIX["seeds"]],
    output:
        summary=f"{RESULTS}/experiments/{{experiment}}/summary.json",
        replicates=f"{RESULTS}/experiments/{{experiment}}/replicates.npz",
    wildcard_constraints:
        experiment=r"[^/]+",
    params:
        code=code_of("summarize_experiment.py"),
        evaluations=lambda wc: experiment_evaluations(wc.experiment),
        data_dir=config["eval"]["data_dir"],
        samples=config["stats"]["bootstrap_samples"],
        seed=config["stats"]["bootstrap_seed"],
    log:
        f"{LOGS}/experiment_summary/{{experiment}}.log",
    benchmark:
        f"{BENCH}/experiment_summary/{{experiment}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpus=0,
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/summarize_experiment.py"


rule table:
    input:
        summaries=lambda wc: [f"{experiment_dir(name)}/summary.json" for name in TABLES[wc.table]],
        runs=lambda wc: [run for name in TABLES[wc.table] for run in experiment_runs(name).values()],
    output:
        csv=report(
            f"{RESULTS}/table_{{table}}.csv",
            caption="../workflow/report/table.rst",
            category="Tables",
            labels=lambda wc: {"table": wc.table, "format": "CSV"},
        ),
        markdown=f"{RESULTS}/table_{{table}}.md",
        gains=[
            report(
                f"{RESULTS}/figures/{{table}}_gains.png",
                caption="../workflow/report/gains.rst",
                category="Figures",
                labels=lambda wc: {"table": wc.table, "figure": "gains over the baseline"},
            ),
            f"{RESULTS}/figures/{{table}}_gains.pdf",
        ],
        curves=[
            report(
                f"{RESULTS}/figures/{{table}}_curves.png",
                caption="../workflow/report/curves.rst",
                category="Figures",
                labels=lambda wc: {"table": wc.table, "figure": "training curves"},
            ),
            f"{RESULTS}/figures/{{table}}_curves.pdf",
        ],
    wildcard_constraints:
        table="|".join(TABLES) or "no-tables",
    params:
        code=code_of("write_table.py"),
        experiments=lambda wc: TABLES[wc.table],
        baseline=BASELINE,
        summary_dirs=lambda wc: {name: experiment_dir(name) for name in TABLES[wc.table]},
        metrics=lambda wc: {name: experiment_metrics(name) for name in TABLES[wc.table]},
        confidence=config["stats"]["confidence"],
        tasks=config["stats"]["tasks"],
        gain_tasks=config["stats"]["relative_gain_tasks"],
    log:
        f"{LOGS}/table/{{table}}.log",
    benchmark:
        f"{BENCH}/table/{{table}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpus=0,
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/write_table.py"


rule ratio_sweep:
    input:
        f"{RESULTS}/table_{{table}}.csv",
    output:
        png=report(
            f"{RESULTS}/figures/{{table}}_ratio_sweep.png",
            caption="../workflow/report/ratio_sweep.rst",
            category="Figures",
            labels=lambda wc: {"table": wc.table, "figure": "synthetic share sweep"},
        ),
        pdf=f"{RESULTS}/figures/{{table}}_ratio_sweep.pdf",
    wildcard_constraints:
        table="|".join(TABLES) or "no-tables",
    params:
        code=code_of("plot_ratio_sweep.py"),
        ratios=lambda wc: {name: 0.0 if name == BASELINE else ratio_of(name) for name in TABLES[wc.table]},
    log:
        f"{LOGS}/ratio_sweep/{{table}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpus=0,
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/plot_ratio_sweep.py"
