# Train split -> SentencePiece BPE tokenizer (HF fast format); every split -> its documents as token ids.


rule tokenizer:
    input:
        PLAN.train_split,  # the train split, or its decontaminated copy (corpus.decontaminate)
    output:
        directory(TOKENIZER),
    log:
        f"{LOGS}/tokenizer.log",
    benchmark:
        f"{BENCH}/tokenizer.tsv"
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["prepare"]["threads"]
    resources:
        **job_resources("prepare"),
    params:
        code=code_of("train_tokenizer.py"),
        recipe=config["tokenizer"]["recipe"],
        vocab_size=config["tokenizer"]["vocab_size"],
        max_sentences=config["tokenizer"]["max_sentences"],
        seed=config["corpus"]["split_seed"],
    script:
        "../scripts/train_tokenizer.py"


rule token_shards:
    input:
        corpus=lambda wc: PLAN.split_source(wc.split),
        tokenizer=TOKENIZER,
    output:
        directory(token_shards("{split}")),
    log:
        f"{LOGS}/token_shards/{{split}}.log",
    benchmark:
        f"{BENCH}/token_shards/{{split}}.tsv"
    wildcard_constraints:
        split="train|test",
    conda:
        "../envs/cdsynth.yaml"
    threads: config["resources"]["prepare"]["threads"]
    resources:
        **job_resources("prepare"),
    params:
        code=code_of("build_shards.py"),
        tokens_per_shard=config["shards"]["tokens_per_shard"],
    script:
        "../scripts/build_shards.py"
