# Each training run -> perplexity and the BabyLM 2025 suite of every checkpoint it saved:
# eval/<run>/seed<S>/step<N>/scores.json + per-item predictions, and checkpoints.json listing them.
#
# One job per run, not per checkpoint: the paper grid would otherwise have 4,176 evaluation jobs, and
# Snakemake's DAG work on them made an up-to-date `snakemake -n` several times slower (bench/RESULTS.md).


rule evaluate:
    input:
        run=run_dir("{run}", "{seed}"),
        test=corpus_split("test"),
    output:
        directory(eval_dir("{run}", "{seed}")),
    log:
        f"{LOGS}/evaluate/{{run}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{run}}/seed{{seed}}.tsv"
    wildcard_constraints:
        run=r".+",
        seed=r"\d+",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["eval"]["threads"]
    resources:
        **job_resources("eval"),
    params:
        code=code_of("evaluate_run.py"),
        stride=config["eval"]["stride"],
        # The run's name in its official BabyLM files (submission/<name>/).
        model_name=lambda wc: PLAN.model_names[eval_dir(wc.run, wc.seed)],
        evaluation=PLAN.evaluation,
    script:
        "../scripts/evaluate_run.py"
