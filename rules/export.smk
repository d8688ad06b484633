# A finished, evaluated run -> a git repository to push to the Hugging Face Hub for BabyLM: main holds the
# final model, one branch per BabyLM mark (chck_1M ...) its checkpoint, each with a model card. On demand
# (not in `all`): snakemake --cores 1 results/export/<run>/seed<S> (docs/submitting.md).


rule export:
    input:
        unpack(lambda wc: PLAN.exports[export_dir(wc.run, wc.seed)]),
    output:
        directory(export_dir("{run}", "{seed}")),
    log:
        f"{LOGS}/export/{{run}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/export/{{run}}/seed{{seed}}.tsv"
    wildcard_constraints:
        run=r".+",
        seed=r"\d+",
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        **job_resources("report"),
    params:
        code=code_of("export_run.py"),
        track=PLAN.track,
    script:
        "../scripts/export_run.py"
