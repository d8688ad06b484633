# cdsynth: synthetic pretraining corpora with contrastive decoding, and what they do for small LMs.
# Stages: corpus -> tokenizer -> token shards -> baseline training -> synthetic corpora -> mixture
# training -> evaluation -> mean-max + paired bootstrap -> tables, figures, report.
#   snakemake --cores all results/table_main.csv                           demo config (config.yaml)
#   snakemake --cores all --configfile workflow/presets/paper.yaml         the paper's whole grid
#   snakemake --report results/report.html                                 tables and figures, captioned

from cdsynth.spec.config import check_config_files, validate_config

# A --configfile replaces config.yaml as a whole: Snakemake would otherwise merge the two key by key,
# mixing the demo's sources and models into the preset's.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


check_config_files(workflow.configfiles)
validate_config(config, workflow.source_path("workflow/schemas/config.schema.yaml"))


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/tokenizer.smk"
include: "rules/train.smk"
include: "rules/synth.smk"
include: "rules/mix.smk"
include: "rules/eval.smk"
include: "rules/report.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        BASELINE_RUNS,
        MANIFESTS,
        BASELINE_EVALUATIONS,
        REPORTS,
