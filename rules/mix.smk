# Synthetic corpus -> training documents; real + synthetic documents -> one mixture run per (experiment, seed).


rule synth_tokens:
    input:
        manifest=f"{SYNTH_ROOT}/{{name}}/manifest.json",
        tokenizer=f"{RESULTS}/tokenizer",
    output:
        directory(f"{SYNTH_ROOT}/{{name}}/tokens"),
    wildcard_constraints:
        name=r"[^/]+",
    params:
        code=code_of("build_synthetic_shards.py"),
        tokens_per_shard=config["shards"]["tokens_per_shard"],
        holdout=MIX["synthetic_holdout"],
        holdout_seed=config["corpus"]["split_seed"],
    log:
        f"{LOGS}/synth/{GOOD_ID}/{{name}}/tokens.log",
    benchmark:
        f"{BENCH}/synth/{GOOD_ID}/{{name}}/tokens.tsv"
    threads: 1
    resources:
        mem_mb=config["resources"]["prepare"]["mem_mb"],
        runtime=config["resources"]["prepare"]["runtime"],
        gpus=0,
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/build_synthetic_shards.py"


def mixture_params(wildcards):
    """The baseline recipe plus the share of synthetic sequences; the path carries the same values."""
    share, _, rounding = wildcards.mixing[1:].partition("-")
    return train_params(wildcards) | {"synthetic_fraction": float(share), "mix_rounding": rounding or "exact"}


rule train_mixture:
    input:
        train=f"{RESULTS}/tokens/train",
        valid=f"{RESULTS}/tokens/test",
        tokenizer=f"{RESULTS}/tokenizer",
        synthetic=f"{RESULTS}/synth/{{good}}/{{name}}/tokens",
    output:
        run=directory(model_dir("{model}/mix/{good}/{name}/{mixing}", "{seed}")),
    wildcard_constraints:
        model=r"[^/]+",
        good=r"[^/]+",
        name=r"[^/]+",
        mixing=r"r[0-9.]+(-paper)?",
        seed=r"\d+",
    params:
        code=code_of("train_model.py"),
        train=mixture_params,
    log:
        f"{LOGS}/train_mixture/{{model}}/{{good}}/{{name}}/{{mixing}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/train_mixture/{{model}}/{{good}}/{{name}}/{{mixing}}/seed{{seed}}.tsv"
    threads: config["resources"]["train"]["threads"]
    resources:
        **job_resources("train"),
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/train_model.py"
