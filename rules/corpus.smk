# Raw text -> train / seed / test splits (Arrow), downloading remote sources first.


rule download:
    output:
        f"{DOWNLOADS}/{{name}}",
    log:
        f"{LOGS}/download/{{name}}.log",
    benchmark:
        f"{BENCH}/download/{{name}}.tsv"
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["download"]["threads"]
    resources:
        **job_resources("download"),
    params:
        code=code_of("download.py"),
        entry=lambda wc: PLAN.downloads[f"{DOWNLOADS}/{wc.name}"],
    script:
        "../scripts/download.py"


rule corpus:
    input:
        PLAN.corpus_files,
    output:
        train=corpus_split("train"),
        seed=corpus_split("seed"),
        test=corpus_split("test"),
        stats=CORPUS_STATS,
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
        sources=PLAN.corpus_sources,
        split_seed=config["corpus"]["split_seed"],
        seed_fraction=config["corpus"]["seed_fraction"],
        test_fraction=config["corpus"]["test_fraction"],
        chunk_words=config["corpus"]["chunk_words"],
    script:
        "../scripts/build_corpus.py"


# The train split's overlap with the evaluation data, in a job of its own: the splits stay untouched, so
# describing them never retrains a model.
rule describe_real_corpus:
    input:
        train=corpus_split("train"),
    output:
        CORPUS_TRAIN_STATS,
    log:
        f"{LOGS}/describe_real_corpus.log",
    benchmark:
        f"{BENCH}/describe_real_corpus.tsv"
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["describe"]["threads"]
    resources:
        **job_resources("describe"),
    params:
        code=code_of("describe_real_corpus.py"),
        eval_data=config["eval"]["data_dir"],
    script:
        "../scripts/describe_real_corpus.py"


# With corpus.decontaminate: the train split without the documents holding an evaluation n-gram, and how
# many were dropped (cdsynth/describe/decontamination.py). The tokenizer and the train token shards are
# made from it (PLAN.train_split); off, nothing asks for it.
rule decontaminate_real_corpus:
    input:
        train=corpus_split("train"),
    output:
        split=DECONTAMINATED_TRAIN,
        stats=DECONTAMINATED_TRAIN_STATS,
    log:
        f"{LOGS}/decontaminate_real_corpus.log",
    benchmark:
        f"{BENCH}/decontaminate_real_corpus.tsv"
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["describe"]["threads"]
    resources:
        **job_resources("describe"),
    params:
        code=code_of("decontaminate_real_corpus.py"),
        eval_data=config["eval"]["data_dir"],
    script:
        "../scripts/decontaminate_real_corpus.py"
