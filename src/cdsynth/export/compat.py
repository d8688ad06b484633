"""The files of one checkpoint as they go into an exported branch, readable by transformers 4.51 and 5.x.

transformers 5 writes some config and tokenizer fields under new names that 4.x does not know. 4.51.3 is
the version the BabyLM 2025 evaluation pipeline pins, and it would not fail on most of them: it would
fall back to its own defaults and silently score another model. The trainer already writes the old names
beside the new ones (`cdsynth.train.models.save_model`, `cdsynth.data.tokenizer.save_tokenizer`); the
export repeats those fixes so that a run saved before them, or by another tool, is exported right too.
Only the exported copy changes; the run's own files are read, never written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdsynth.errors import DataError

# What a branch may hold from a checkpoint directory: the model, its configs and the tokenizer. Anything
# else there (checkpoint.json, optimizer or RNG state, a stray file) stays out of the published model.
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json")
WEIGHT_SHARDS = "model-*-of-*.safetensors"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
)
# Tokenizer classes only transformers 5 has. tokenizer.json holds the whole pipeline (normaliser,
# pre-tokeniser, model, post-processor adding BOS), so 4.x's generic fast tokenizer gives the same ids.
NEW_TOKENIZER_CLASSES = {"TokenizersBackend"}
OLD_TOKENIZER_CLASS = "PreTrainedTokenizerFast"
# Keys transformers 5 leaves in tokenizer_config.json from how the trainer *loaded* the tokenizer (from a
# local directory); on the Hub "is_local": true would be false, and neither describes the tokenizer.
LOAD_TIME_KEYS = ("is_local", "local_files_only")


def model_config(config: dict[str, Any], source: Path) -> dict[str, Any]:
    """config.json with the fields 4.x reads beside the ones 5.x writes (5.x ignores the old ones)."""
    config = dict(config)
    rope = config.get("rope_parameters")
    if isinstance(rope, dict):
        # 5.x keeps the rotary base in rope_parameters; 4.x reads `rope_theta` and, missing it, silently
        # uses 10000.0, a different model whenever the run trained with another base.
        if "rope_theta" in rope:
            config["rope_theta"] = rope["rope_theta"]
        # A scaled rotary embedding is `rope_scaling` in 4.x, with the same keys less the base.
        kind = rope.get("rope_type", "default")
        if kind != "default" and not config.get("rope_scaling"):
            config["rope_scaling"] = {key: value for key, value in rope.items() if key != "rope_theta"}
    if "rope_theta" not in config and config.get("model_type") == "llama":
        raise DataError(
            f"{source}: no rope_theta and no rope_parameters.rope_theta; transformers 4.51 would guess "
            "10000.0. Save the checkpoint again with `save_pretrained`."
        )
    # 5.x names the weights' type `dtype`; 4.x reads `torch_dtype` (for `torch_dtype="auto"`) and, missing
    # it, loads in float32 and says nothing: a bfloat16 model would be scored in another precision.
    if "dtype" in config and "torch_dtype" not in config:
        config["torch_dtype"] = config["dtype"]
    return config


def tokenizer_config(config: dict[str, Any]) -> dict[str, Any]:
    """tokenizer_config.json under a class every transformers version knows, without load-time keys."""
    config = {key: value for key, value in config.items() if key not in LOAD_TIME_KEYS}
    # 4.51 refuses a class it does not have ("Tokenizer class TokenizersBackend does not exist"); 5.x
    # maps PreTrainedTokenizerFast back onto TokenizersBackend, reading the same tokenizer.json.
    if config.get("tokenizer_class") in NEW_TOKENIZER_CLASSES:
        config["tokenizer_class"] = OLD_TOKENIZER_CLASS
    return config


FIXES = {"config.json": model_config, "tokenizer_config.json": lambda config, _: tokenizer_config(config)}


def json_bytes(obj: Any) -> bytes:
    """One fixed layout, so the same input always gives the same blob (and the same commit)."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def read_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not readable JSON ({err}). Save the checkpoint again.") from err
    if not isinstance(value, dict):
        raise DataError(f"{path}: not a JSON object. Save the checkpoint again.")
    return value


def branch_files(checkpoint: Path) -> dict[str, Path | bytes]:
    """{name in the branch: the file to copy as is, or the fixed bytes to write} for one checkpoint."""
    names = [*MODEL_FILES, *sorted(p.name for p in checkpoint.glob(WEIGHT_SHARDS)), *TOKENIZER_FILES]
    files: dict[str, Path | bytes] = {}
    for name in names:
        path = checkpoint / name
        if not path.is_file():
            continue
        fix = FIXES.get(name)
        files[name] = json_bytes(fix(read_object(path), path)) if fix else path
    weights = "model.safetensors" in files or "model.safetensors.index.json" in files
    if "config.json" not in files or not weights or "tokenizer_config.json" not in files:
        raise DataError(
            f"{checkpoint}: not a complete checkpoint (it needs config.json, model.safetensors and the "
            "tokenizer files). Retrain the run or copy the checkpoint again."
        )
    return files
