# Shared helpers: where each output lives and the small per-job param dicts derived from the config.

from cdsynth.corpus import expand_paths
from cdsynth.download import local_name
from cdsynth.errors import ConfigError
from cdsynth.train import checkpoint_steps

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"


def download_target(entry):
    return f"resources/downloads/{local_name(entry['url'], entry.get('member'))}"


def collect_downloads(sources):
    """Cache path -> download entry; two different downloads may not share a cache file name."""
    downloads = {}
    for name, source in sources.items():
        for split in ("train", "test"):
            for entry in source.get(split, []):
                if not isinstance(entry, dict):
                    continue
                target = download_target(entry)
                known = downloads.setdefault(target, entry)
                if (known["url"], known.get("member")) != (entry["url"], entry.get("member")):
                    raise ConfigError(
                        f"corpus.sources.{name}.{split}: {entry['url']} would be cached as {target}, "
                        "like another download; give them files with different names"
                    )
    return downloads


DOWNLOADS = collect_downloads(config["corpus"]["sources"])


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
