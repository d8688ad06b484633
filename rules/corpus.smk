# Raw text -> train / seed / test splits (Arrow), downloading remote sources first.

from dataclasses import asdict

from cdsynth.spec.sources import DOWNLOADS, Source, downloads

# Every source file resolved now: a path or glob that matches nothing stops the workflow here.
DOWNLOAD_ENTRIES = downloads(config["corpus"]["sources"])
CORPUS_SOURCES = {
    name: asdict(Source.resolved(source)) for name, source in config["corpus"]["sources"].items()
}


rule download:
    output:
        f"{DOWNLOADS}/{{name}}",
    log:
        f"{LOGS}/download/{{name}}.log",
    benchmark:
        f"{BENCH}/download/{{name}}.tsv"
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=240,
        gpus=0,
    params:
        code=code_of("download.py"),
        entry=lambda wc: DOWNLOAD_ENTRIES[f"{DOWNLOADS}/{wc.name}"],
    script:
        "../scripts/download.py"


rule corpus:
    input:
        [path for source in CORPUS_SOURCES.values() for path in (*source["train"], *source["test"])],
    output:
        train=corpus_split("train"),
        seed=corpus_split("seed"),
        test=corpus_split("test"),
        stats=f"{RESULTS}/corpus/stats.json",
    log:
        f"{LOGS}/corpus.log",
    benchmark:
        f"{BENCH}/corpus.tsv"
    conda:
        "../envs/cdsynth.yaml"
    threads: 1
    resources:
        **job_resources("prepare"),
    params:
        code=code_of("build_corpus.py"),
        sources=CORPUS_SOURCES,
        split_seed=config["corpus"]["split_seed"],
        seed_fraction=config["corpus"]["seed_fraction"],
        test_fraction=config["corpus"]["test_fraction"],
        chunk_words=config["corpus"]["chunk_words"],
    script:
        "../scripts/build_corpus.py"
