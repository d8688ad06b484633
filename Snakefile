# cdsynth: synthetic pretraining corpora with contrastive decoding, and what they do for small LMs.
# Stages: corpus -> tokenizer -> token shards -> baseline training -> synthetic corpora -> mixture
# training -> evaluation -> mean-max + paired bootstrap -> tables, figures, report.
#   snakemake --cores all results/table_main.csv                           demo config (config.yaml)
#   snakemake --cores all --configfile workflow/presets/paper.yaml         the paper's whole grid
#   snakemake --report results/report.html                                 tables and figures, captioned

from cdsynth.spec.config import check_config_files, validate_config
from cdsynth.spec.eval_data import check_data_dir
from cdsynth.threads import configure_openmp

# OpenMP's wait policy for the jobs' torch (cdsynth/threads.py). Set here, it is in every job's environment
# (Snakemake copies its own; SLURM's --export=ALL) before the job imports torch, which reads it then; a
# script's first line would come too late once an import above it loads torch. Snakemake itself sets
# OMP_NUM_THREADS and MKL_NUM_THREADS to each job's `threads`. A policy the user exported is kept.
configure_openmp()

# A --configfile replaces config.yaml as a whole: Snakemake would otherwise merge the two key by key,
# mixing the demo's sources and models into the preset's.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


check_config_files(workflow.configfiles)
validate_config(config, workflow.source_path("workflow/schemas/config.schema.yaml"))
# A missing task directory stops the workflow here, naming it.
check_data_dir(config["eval"]["data_dir"])


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/tokenizer.smk"
include: "rules/train.smk"
include: "rules/synth.smk"
include: "rules/mix.smk"
include: "rules/eval.smk"
include: "rules/report.smk"
include: "rules/export.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        PLAN.targets,
