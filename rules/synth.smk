# GOOD (+ amateur) checkpoints and seed prompts -> synthetic corpus shards -> a manifest per corpus.


rule synth_shard:
    input:
        expert=run_dir(PLAN.good.model, PLAN.good.seed),
        amateur=lambda wc: PLAN.amateur_runs.get(wc.name, []),
        prompts=corpus_split("seed"),
    output:
        shard_file(CORPUS, "{shard}"),
    log:
        f"{LOGS}/synth/{PLAN.good.slug}/{{name}}/shard-{{shard}}.log",
    benchmark:
        f"{BENCH}/synth/{PLAN.good.slug}/{{name}}/shard-{{shard}}.tsv"
    wildcard_constraints:
        name=r"[^/]+",
        shard=r"\d{5}",
    conda:
        "../envs/vllm.yaml" if config["synth"]["backend"] == "vllm" else "../envs/cdsynth.yaml"
    threads: config["resources"]["synth"]["threads"]
    resources:
        **job_resources("synth"),
    params:
        code=code_of("synthesize_shard.py"),
        synth=lambda wc: PLAN.corpora[wc.name],
        tensor_parallel=config["synth"]["tensor_parallel"],
        compile_cache=COMPILE_CACHE,
    script:
        "../scripts/synthesize_shard.py"


rule synth_manifest:
    input:
        lambda wc: [shard_file(corpus_dir(PLAN.good.slug, wc.name), shard) for shard in PLAN.shards],
    output:
        manifest_file(CORPUS),
    log:
        f"{LOGS}/synth/{PLAN.good.slug}/{{name}}/manifest.log",
    benchmark:
        f"{BENCH}/synth/{PLAN.good.slug}/{{name}}/manifest.tsv"
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["describe"]["threads"]
    resources:
        **job_resources("describe"),
    params:
        code=code_of("write_manifest.py"),
        synth=lambda wc: PLAN.corpora[wc.name],
    script:
        "../scripts/write_manifest.py"


# Each corpus's statistics and dataset card, made in a job of its own: editing them reruns no mixture.
rule describe_corpus:
    input:
        manifest=manifest_file(CORPUS),
        tokenizer=TOKENIZER,
        reference=corpus_split("train"),
    output:
        stats=corpus_stats_file(CORPUS),
        card=corpus_card(CORPUS),
    log:
        f"{LOGS}/synth/{PLAN.good.slug}/{{name}}/describe.log",
    benchmark:
        f"{BENCH}/synth/{PLAN.good.slug}/{{name}}/describe.tsv"
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["describe"]["threads"]
    resources:
        **job_resources("describe"),
    params:
        code=code_of("describe_corpus.py"),
        eval_data=config["eval"]["data_dir"],
    script:
        "../scripts/describe_corpus.py"


# With synth.decontaminate: the corpus without the samples holding an evaluation n-gram, a corpus of its
# own (shards, manifest.json with the count, a card), from which its training documents are made
# (PLAN.token_sources); off, nothing asks for it.
rule decontaminate_corpus:
    input:
        manifest=manifest_file(CORPUS),
    output:
        manifest=manifest_file(decontaminated_corpus(CORPUS)),
        shards=[shard_file(decontaminated_corpus(CORPUS), shard) for shard in PLAN.shards],
        card=corpus_card(decontaminated_corpus(CORPUS)),
    log:
        f"{LOGS}/synth/{PLAN.good.slug}/{{name}}/decontaminate.log",
    benchmark:
        f"{BENCH}/synth/{PLAN.good.slug}/{{name}}/decontaminate.tsv"
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["describe"]["threads"]
    resources:
        **job_resources("describe"),
    params:
        code=code_of("decontaminate_corpus.py"),
        eval_data=config["eval"]["data_dir"],
    script:
        "../scripts/decontaminate_corpus.py"


rule synth_all:
    input:
        PLAN.manifests,
        PLAN.descriptions,
