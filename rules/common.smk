# Shared helpers: where each output lives and the small per-job param dicts derived from the config.

from cdsynth.corpus import expand_paths
from cdsynth.download import local_name
from cdsynth.train import checkpoint_steps

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"


def download_target(entry):
    return f"resources/downloads/{local_name(entry['url'], entry.get('member'))}"


DOWNLOADS = {
    download_target(entry): entry
    for source in config["corpus"]["sources"].values()
    for split in ("train", "test")
    for entry in source.get(split, [])
    if isinstance(entry, dict)
}


def source_files(entries):
    """Concrete files for a source's entries; a path or glob matching nothing fails here, before any job."""
    files = []
    for entry in entries:
        if isinstance(entry, dict):
            files.append(download_target(entry))
        else:
            files.extend(str(path) for path in expand_paths([entry]))
    return files


CORPUS_SOURCES = {
    name: {
        "format": source["format"],
        "max_words": source.get("max_words"),
        "train": source_files(source["train"]),
        "test": source_files(source.get("test", [])),
    }
    for name, source in config["corpus"]["sources"].items()
}


def job_resources(group):
    """Snakemake `resources:` for a rule group (threads are set separately)."""
    spec = config["resources"][group]
    return {"mem_mb": spec["mem_mb"], "runtime": spec["runtime"], "gpus": spec["gpus"]}


def model_dir(model, seed):
    return f"{RESULTS}/models/{model}/seed{seed}"


def checkpoint_dirs(model, seed):
    steps = checkpoint_steps(config["train"]["steps"], config["train"]["save_every"])
    return [f"{model_dir(model, seed)}/step{step}" for step in steps]


def baseline_checkpoints():
    return [
        path
        for model, seeds in config["baseline"].items()
        for seed in seeds
        for path in checkpoint_dirs(model, seed)
    ]
