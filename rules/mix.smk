# Synthetic corpus -> training documents; real + synthetic documents -> one mixture run per (experiment, seed).

from dataclasses import asdict

# Mixtures by their path name, so a run's params are looked up, never parsed back from its path.
MIXTURES = {e.mixture.slug: e.mixture for e in EXPERIMENTS.values() if e.mixture is not None}


rule synth_tokens:
    input:
        manifest=f"{corpus_dir('{name}')}/manifest.json",
        tokenizer=TOKENIZER,
    output:
        directory(f"{corpus_dir('{name}')}/tokens"),
    log:
        f"{LOGS}/synth/{GOOD.slug}/{{name}}/tokens.log",
    benchmark:
        f"{BENCH}/synth/{GOOD.slug}/{{name}}/tokens.tsv"
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        mem_mb=config["resources"]["prepare"]["mem_mb"],
        runtime=config["resources"]["prepare"]["runtime"],
        gpus=0,
    params:
        code=code_of("build_synthetic_shards.py"),
        tokens_per_shard=config["shards"]["tokens_per_shard"],
        holdout=config["mix"]["synthetic_holdout"],
        holdout_seed=config["corpus"]["split_seed"],
    script:
        "../scripts/build_synthetic_shards.py"


rule train_mixture:
    input:
        train=token_shards("train"),
        valid=token_shards("test"),
        tokenizer=TOKENIZER,
        synthetic=f"{corpus_dir('{name}', '{good}')}/tokens",
    output:
        run=directory(run_dir(mixture_run("{model}", "{good}", "{name}", "{mixing}"), "{seed}")),
    log:
        f"{LOGS}/train_mixture/{{model}}/{{good}}/{{name}}/{{mixing}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/train_mixture/{{model}}/{{good}}/{{name}}/{{mixing}}/seed{{seed}}.tsv"
    wildcard_constraints:
        model=r"[^/]+",
        good=r"[^/]+",
        name=r"[^/]+",
        mixing=r"r[0-9.]+(-paper)?",
        seed=r"\d+",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["train"]["threads"]
    resources:
        **job_resources("train"),
    params:
        code=code_of("train_model.py"),
        train=lambda wc: {
            "arch": config["models"][wc.model],
            "seed": int(wc.seed),
            **TRAIN_RECIPE,
            "mixture": asdict(MIXTURES[wc.mixing]),
        },
    script:
        "../scripts/train_model.py"
