# Token shards -> every run's word budget, counted before it trains (a run over its BabyLM track stops
# here) -> one baseline training run per (model, seed): a directory with a checkpoint per save step
# (step<N>/), metrics.csv and curve.png. The run is one output, not one per checkpoint: the paper grid
# has ~4,000 checkpoints, and declaring each made an up-to-date `snakemake -n` much slower.


rule budget:
    input:
        train=token_shards("train"),
        tokenizer=TOKENIZER,
        corpus_stats=CORPUS_STATS,
        synthetic=lambda wc: PLAN.budgets[budget_file(wc.run, wc.seed)]["synthetic"] or [],
        ancillary=lambda wc: [m["run"] for m in PLAN.budgets[budget_file(wc.run, wc.seed)]["ancillary"]],
    output:
        budget_file("{run}", "{seed}"),
    log:
        f"{LOGS}/budget/{{run}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/budget/{{run}}/seed{{seed}}.tsv"
    wildcard_constraints:
        run=r".+",
        seed=r"\d+",
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        **job_resources("prepare"),
    params:
        code=code_of("count_budget.py"),
        budget=lambda wc: PLAN.budgets[budget_file(wc.run, wc.seed)],
    script:
        "../scripts/count_budget.py"


rule train_baseline:
    input:
        train=token_shards("train"),
        valid=token_shards("test"),
        tokenizer=TOKENIZER,
        budget=budget_file("{model}", "{seed}"),  # counted first: a run over its track never trains
    output:
        run=directory(run_dir("{model}", "{seed}")),
    log:
        f"{LOGS}/train_baseline/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/train_baseline/{{model}}/seed{{seed}}.tsv"
    wildcard_constraints:
        model=r"[^/]+",
        seed=r"\d+",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["train"]["threads"]
    resources:
        **job_resources("train"),
    params:
        code=code_of("train_model.py"),
        train=lambda wc: PLAN.baseline_runs[run_dir(wc.model, wc.seed)],
    script:
        "../scripts/train_model.py"
