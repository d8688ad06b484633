# Token shards -> one baseline training run per (model, seed), a checkpoint directory per save step.


def train_params(wildcards):
    """Everything that defines one run, and nothing else, so editing another cell never reruns it."""
    train = config["train"]
    return {
        "arch": config["models"][wildcards.model],
        "seed": int(wildcards.seed),
        **{key: train[key] for key in sorted(train)},
    }


rule train_baseline:
    input:
        train=f"{RESULTS}/tokens/train",
        valid=f"{RESULTS}/tokens/test",
        tokenizer=f"{RESULTS}/tokenizer",
    output:
        checkpoints=[directory(path) for path in checkpoint_dirs("{model}", "{seed}")],
        metrics=f"{RESULTS}/models/{{model}}/seed{{seed}}/metrics.csv",
        curve=f"{RESULTS}/models/{{model}}/seed{{seed}}/curve.png",
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
