# cdsynth: synthetic pretraining corpora with contrastive decoding, and what they do for small LMs.
# Stages: corpus -> tokenizer -> token shards -> baseline training -> synthetic corpora -> evaluation
# (-> mixtures -> tables).
#   snakemake --cores all                                                  demo config (config.yaml)
#   snakemake --cores all --configfile workflow/presets/paper.yaml         the paper's values

from cdsynth.config import validate_config


# A --configfile replaces config.yaml as a whole: Snakemake would otherwise merge the two key by key,
# mixing the demo's sources and models into the preset's.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


validate_config(config, workflow.source_path("workflow/schemas/config.schema.yaml"))


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/tokenizer.smk"
include: "rules/train.smk"
include: "rules/synth.smk"
include: "rules/eval.smk"


rule all:
    default_target: True
    input:
        baseline_checkpoints(),
        synth_manifests(),
        baseline_evaluations(),
