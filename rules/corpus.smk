# Raw text -> train / seed / test splits (Arrow), downloading remote sources first.


rule download:
    output:
        "resources/downloads/{name}",
    params:
        code=code_of("download.py"),
        entry=lambda wc: DOWNLOADS[f"resources/downloads/{wc.name}"],
    log:
        f"{LOGS}/download/{{name}}.log",
    benchmark:
        f"{BENCH}/download/{{name}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=240,
        gpus=0,
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/download.py"


rule corpus:
    input:
        [path for source in CORPUS_SOURCES.values() for path in source["train"] + source["test"]],
    output:
        train=f"{RESULTS}/corpus/train.arrow",
        seed=f"{RESULTS}/corpus/seed.arrow",
        test=f"{RESULTS}/corpus/test.arrow",
        stats=f"{RESULTS}/corpus/stats.json",
    params:
        code=code_of("build_corpus.py"),
        sources=CORPUS_SOURCES,
        split_seed=config["corpus"]["split_seed"],
        seed_fraction=config["corpus"]["seed_fraction"],
        test_fraction=config["corpus"]["test_fraction"],
        chunk_words=config["corpus"]["chunk_words"],
    log:
        f"{LOGS}/corpus.log",
    benchmark:
        f"{BENCH}/corpus.tsv"
    threads: 1
    resources:
        **job_resources("prepare"),
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/build_corpus.py"
