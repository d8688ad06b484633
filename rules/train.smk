# Token shards -> one baseline training run per (model, seed): a directory with a checkpoint per save step
# (step<N>/), metrics.csv and curve.png. The run is one output, not one per checkpoint: the paper grid
# has ~4,000 checkpoints, and declaring each made an up-to-date `snakemake -n` much slower.


def train_params(wildcards):
    """Everything that defines one run, and nothing else, so editing another cell never reruns it."""
    train = config["train"]
    return {
        "arch": config["models"][wildcards.model],
        "seed": int(wildcards.seed),
        "block_size": config["shards"]["block_size"],
        **{key: train[key] for key in sorted(train)},
    }


rule train_baseline:
    input:
        train=f"{RESULTS}/tokens/train",
        valid=f"{RESULTS}/tokens/test",
        tokenizer=f"{RESULTS}/tokenizer",
    output:
        run=directory(model_dir("{model}", "{seed}")),
    wildcard_constraints:
        model=r"[^/]+",
        seed=r"\d+",
    params:
        code=code_of("train_model.py"),
        train=train_params,
    log:
        f"{LOGS}/train_baseline/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/train_baseline/{{model}}/seed{{seed}}.tsv"
    threads: config["resources"]["train"]["threads"]
    resources:
        **job_resources("train"),
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/train_model.py"
