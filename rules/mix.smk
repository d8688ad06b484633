# Synthetic corpus -> training documents; real + synthetic documents -> one mixture run per (experiment, seed).


rule synth_tokens:
    input:
        # The corpus's manifest, or its decontaminated copy's (synth.decontaminate).
        manifest=lambda wc: PLAN.token_sources[wc.name],
        tokenizer=TOKENIZER,
    output:
        directory(synthetic_tokens(CORPUS)),
    log:
        f"{LOGS}/synth/{PLAN.good.slug}/{{name}}/tokens.log",
    benchmark:
        f"{BENCH}/synth/{PLAN.good.slug}/{{name}}/tokens.tsv"
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        "../envs/cdsynth.yaml"
    threads: 1  # its samples are token ids already: it splits them, on one thread
    resources:
        **job_resources("prepare"),
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
        synthetic=synthetic_tokens(corpus_dir("{good}", "{name}")),
        # Counted first: a run over its track never trains.
        budget=budget_file(mixture_run("{model}", "{good}", "{name}", "{mixing}"), "{seed}"),
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
        train=lambda wc: PLAN.mixture_runs[
            run_dir(mixture_run(wc.model, wc.good, wc.name, wc.mixing), wc.seed)
        ],
    script:
        "../scripts/train_model.py"
