# Token shards -> one baseline training run per (model, seed): a directory with a checkpoint per save step
# (step<N>/), metrics.csv and curve.png. The run is one output, not one per checkpoint: the paper grid
# has ~4,000 checkpoints, and declaring each made an up-to-date `snakemake -n` much slower.


rule train_baseline:
    input:
        train=token_shards("train"),
        valid=token_shards("test"),
        tokenizer=TOKENIZER,
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
