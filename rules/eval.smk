# Each training run -> perplexity and the BabyLM 2025 suite of every checkpoint it saved:
# eval/<run>/seed<S>/step<N>/scores.json + per-item predictions.
#
# One job per run, not per checkpoint: the paper grid would otherwise have 4,176 evaluation jobs, and
# Snakemake's DAG work on them made an up-to-date `snakemake -n` several times slower (bench/RESULTS.md).


rule evaluate:
    input:
        run=model_dir("{run}", "{seed}"),
        test=f"{RESULTS}/corpus/test.arrow",
    output:
        directory(eval_dir("{run}", "{seed}")),
    wildcard_constraints:
        run=r".+",
        seed=r"\d+",
    params:
        code=code_of("evaluate.py"),
        steps=saved_steps(),
        data_dir=config["eval"]["data_dir"],
        max_items=config["eval"]["max_items_per_task"],
        batch_size=config["eval"]["batch_size"],
        window=config["eval"]["window"] or config["shards"]["block_size"],
        reading_predictor=config["eval"]["reading_predictor"],
        dtype=config["eval"]["dtype"],
    log:
        f"{LOGS}/evaluate/{{run}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{run}}/seed{{seed}}.tsv"
    threads: config["resources"]["eval"]["threads"]
    resources:
        **job_resources("eval"),
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/evaluate.py"


rule eval_baseline:
    input:
        baseline_evaluations(),
