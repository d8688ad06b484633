# Every saved checkpoint (baseline or mixture run) -> perplexity and the BabyLM 2025 suite: scores.json +
# per-item predictions.


rule evaluate:
    input:
        checkpoint=f"{RESULTS}/models/{{run}}/seed{{seed}}/step{{step}}",
        test=f"{RESULTS}/corpus/test.arrow",
    output:
        scores=f"{RESULTS}/eval/{{run}}/seed{{seed}}/step{{step}}/scores.json",
        predictions=f"{RESULTS}/eval/{{run}}/seed{{seed}}/step{{step}}/predictions.parquet",
    wildcard_constraints:
        run=r".+",
        seed=r"\d+",
        step=r"\d+",
    params:
        code=code_of("evaluate.py"),
        data_dir=config["eval"]["data_dir"],
        max_items=config["eval"]["max_items_per_task"],
        batch_size=config["eval"]["batch_size"],
        window=config["eval"]["window"] or config["shards"]["block_size"],
    log:
        f"{LOGS}/evaluate/{{run}}/seed{{seed}}/step{{step}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{run}}/seed{{seed}}/step{{step}}.tsv"
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
