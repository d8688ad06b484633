# GOOD (+ amateur) checkpoints and seed prompts -> synthetic corpus shards -> a manifest per corpus.

from dataclasses import asdict

from cdsynth.spec.synthesis import backend_for
from snakemake.logging import logger

# Corpora by name; the name is derived from the scoring and the amateur, so identical specs share files.
CORPORA = {e.corpus.name: e.corpus for e in EXPERIMENTS.values() if e.corpus is not None}
GOOD_RUN = run_dir(GOOD.model, GOOD.seed)
# The training run whose checkpoint is each corpus's amateur (none for methods without one, or dropout).
AMATEUR_RUNS = {
    name: run_dir(*corpus.amateur.run_of(GOOD))
    for name, corpus in CORPORA.items()
    if corpus.amateur is not None and corpus.amateur.kind != "dropout"
}
BACKENDS = {
    name: backend_for(config["synth"]["backend"], corpus.amateur and corpus.amateur.dropout)
    for name, corpus in CORPORA.items()
}
# The whole definition of each corpus: scoring, amateur, protocol, GOOD and the backend that runs it.
SYNTH_PARAMS = {
    name: {
        "scoring": corpus.scoring.as_dict(),
        "amateur": corpus.amateur and str(corpus.amateur),
        "amateur_dir": f"{AMATEUR_RUNS[name]}/step{corpus.amateur.step}" if name in AMATEUR_RUNS else None,
        "amateur_dropout": corpus.amateur and corpus.amateur.dropout,
        "good": asdict(GOOD),
        **{key: value for key, value in config["synth"].items() if key not in ("good", "tensor_parallel")},
        "backend": BACKENDS[name],
    }
    for name, corpus in CORPORA.items()
}
MANIFESTS = [f"{corpus_dir(name)}/manifest.json" for name in CORPORA]
# Each corpus's statistics and dataset card, made in a job of its own: editing them reruns no mixture.
DESCRIPTIONS = [f"{corpus_dir(name)}/stats.json" for name in CORPORA]

for name, backend in BACKENDS.items():
    if backend != config["synth"]["backend"]:
        logger.warning(
            f"synthetic corpus {name}: vLLM has no attention dropout, so its {CORPORA[name].amateur} "
            "amateur runs on the torch engine"
        )


rule synth_shard:
    input:
        expert=GOOD_RUN,
        amateur=lambda wc: AMATEUR_RUNS.get(wc.name, []),
        prompts=corpus_split("seed"),
    output:
        f"{corpus_dir('{name}')}/shard-{{shard}}.arrow",
    log:
        f"{LOGS}/synth/{GOOD.slug}/{{name}}/shard-{{shard}}.log",
    benchmark:
        f"{BENCH}/synth/{GOOD.slug}/{{name}}/shard-{{shard}}.tsv"
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
        synth=lambda wc: SYNTH_PARAMS[wc.name],
        tensor_parallel=config["synth"]["tensor_parallel"],
        compile_cache=f"{RESULTS}/cache/torchinductor",
    script:
        "../scripts/synthesize_shard.py"


rule synth_manifest:
    input:
        lambda wc: [
            f"{corpus_dir(wc.name)}/shard-{index:05d}.arrow" for index in range(config["synth"]["shards"])
        ],
    output:
        f"{corpus_dir('{name}')}/manifest.json",
    log:
        f"{LOGS}/synth/{GOOD.slug}/{{name}}/manifest.log",
    benchmark:
        f"{BENCH}/synth/{GOOD.slug}/{{name}}/manifest.tsv"
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
        gpus=0,
    params:
        code=code_of("write_manifest.py"),
        synth=lambda wc: SYNTH_PARAMS[wc.name],
    script:
        "../scripts/write_manifest.py"


rule describe_corpus:
    input:
        manifest=f"{corpus_dir('{name}')}/manifest.json",
        tokenizer=TOKENIZER,
        reference=corpus_split("train"),
    output:
        stats=f"{corpus_dir('{name}')}/stats.json",
        card=f"{corpus_dir('{name}')}/README.md",
    log:
        f"{LOGS}/synth/{GOOD.slug}/{{name}}/describe.log",
    benchmark:
        f"{BENCH}/synth/{GOOD.slug}/{{name}}/describe.tsv"
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpus=0,
    params:
        code=code_of("describe_corpus.py"),
    script:
        "../scripts/describe_corpus.py"


rule synth_all:
    input:
        MANIFESTS,
        DESCRIPTIONS,
