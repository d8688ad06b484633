# Train split -> SentencePiece BPE tokenizer (HF fast format) -> packed token shards.


rule tokenizer:
    input:
        f"{RESULTS}/corpus/train.arrow",
    output:
        directory(f"{RESULTS}/tokenizer"),
    params:
        code=code_of("train_tokenizer.py"),
        vocab_size=config["tokenizer"]["vocab_size"],
        max_sentences=config["tokenizer"]["max_sentences"],
        seed=config["corpus"]["split_seed"],
    log:
        f"{LOGS}/tokenizer.log",
    benchmark:
        f"{BENCH}/tokenizer.tsv"
    threads: config["resources"]["prepare"]["threads"]
    resources:
        **job_resources("prepare"),
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/train_tokenizer.py"


rule token_shards:
    input:
        corpus=f"{RESULTS}/corpus/{{split}}.arrow",
        tokenizer=f"{RESULTS}/tokenizer",
    output:
        directory(f"{RESULTS}/tokens/{{split}}"),
    wildcard_constraints:
        split="train|test",
    params:
        code=code_of("build_shards.py"),
        tokens_per_shard=config["shards"]["tokens_per_shard"],
    log:
        f"{LOGS}/token_shards/{{split}}.log",
    benchmark:
        f"{BENCH}/token_shards/{{split}}.tsv"
    threads: config["resources"]["prepare"]["threads"]
    resources:
        **job_resources("prepare"),
    conda:
        "../envs/cdsynth.yaml"
    script:
        "../scripts/build_shards.py"
