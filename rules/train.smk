# Token shards -> one baseline training run per (model, seed): a directory with a checkpoint per save step
# (step<N>/), metrics.csv and curve.png. The run is one output, not one per checkpoint: the paper grid
# has ~4,000 checkpoints, and declaring each made an up-to-date `snakemake -n` much slower.

# Everything that defines a run but its architecture and seed, so editing another cell never reruns it.
TRAIN_RECIPE = {"block_size": config["shards"]["block_size"], **config["train"]}
BASELINE_RUNS = [run_dir(model, seed) for model, seeds in config["baseline"].items() for seed in seeds]


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
        train=lambda wc: {"arch": config["models"][wc.model], "seed": int(wc.seed), **TRAIN_RECIPE},
    script:
        "../scripts/train_model.py"
