# GOOD (+ amateur) checkpoints and seed prompts -> synthetic corpus shards -> a manifest per corpus.


rule synth_shard:
    input:
        expert=GOOD_RUN,
        amateur=lambda wc: [run for run in amateur_source(SYNTH_CORPORA[wc.name])[:1] if run],
        prompts=f"{RESULTS}/corpus/seed.arrow",
    output:
        f"{SYNTH_ROOT}/{{name}}/shard-{{shard}}.arrow",
    wildcard_constraints:
        name=r"[^/]+",
        shard=r"\d{5}",
    params:
        code=code_of("synthesize_shard.py"),
        synth=lambda wc: synth_params(wc.name),
        tensor_parallel=config["synth"]["tensor_parallel"],
    log:
        f"{LOGS}/synth/{GOOD_ID}/{{name}}/shard-{{shard}}.log",
    benchmark:
        f"{BENCH}/synth/{GOOD_ID}/{{name}}/shard-{{shard}}.tsv"
    threads: config["resources"]["synth"]["threads"]
    resources:
        **job_resources("synth"),
    conda:
        "../envs/vllm.yaml" if config["synth"]["backend"] == "vllm" else "../envs/cdsynth.yaml"
    script:
        "../scripts/synthesize_shard.py"


rule synth_manifest:
    input:
        lambda wc: synth_shards(wc.name),
    output:
        f"{SYNTH_ROOT}/{{name}}/manifest.json",
    wildcard_constraints:
        name=r"[^/]+",
    params:
        code=code_of("write_manifest.py"),
        synth=lambda wc: synth_params(wc.name),
    log:
        f"{LOGS}/synth/{GOOD_ID}/{{name}}/manifest.log",
    benchmark:
        f"{BENCH}/synth/{GOOD_ID}/{{name}}/manifest.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
        gpus=0,
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/write_manifest.py"


rule synth_all:
    input:
        synth_manifests(),
