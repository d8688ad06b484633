"""The dataset card of a synthetic corpus: valid front matter, loadable by `datasets`, complete, stable."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from cdsynth.describe.card import dataset_card, size_category, write_card
from cdsynth.errors import DataError
from cdsynth.io import read_json, write_arrow
from cdsynth.spec.synthesis import Scoring
from cdsynth.synth.manifest import SHARD_SCHEMA, write_manifest

COLUMNS = ["input_ids", "text", "prompt_id", "continuation", "prefix_len"]
PARAMS = {
    "scoring": Scoring(method="cd", top_k=50).as_dict(),
    "amateur": "early:50",
    "amateur_dir": "runs/base-seed42/step50",
    "amateur_dropout": None,
    "good": {"model": "base", "seed": 42, "step": 400},
    "tokens": 12,
    "prefix_tokens": 2,
    "continuations": 2,
    "new_tokens": 2,
    "keep_prefix": True,
    "shards": 2,
    "batch_size": 4,
    "seed": 0,
    "prompt_seed": 42,
    "dtype": "float32",
    "compile": False,
    "backend": "torch",
}
EXPERT = "/runs/base-seed42/step400"
AMATEUR = "/runs/base-seed42/step50"
STATS = {
    "samples": 6,
    "generated_tokens": 12,
    "mean_sample_tokens": 5.0,
    "distinct_tokens": {"1": 0.5, "2": 0.75, "3": 1.0},
    "distinct_words": {"1": 0.4, "2": 0.8, "3": None},
    "repetition": {"repeated_4gram_share": 0.0, "longest_repeat_mean": 1.5, "longest_repeat_max": 2},
    "documents_per_sample": 1.0,
    "eos_per_1k_tokens": 0.0,
    "bos_per_1k_tokens": 200.0,
    "vocab_coverage": 0.01,
    "copy_rate_reference": None,
    "copy_rate_prompt": 0.25,
}


def write_shard(path: Path, index: int, rows: int) -> None:
    columns = {
        "input_ids": [[1, 5 + i, 6, 7 + index, 8] for i in range(rows)],
        "text": [f"shard {index} sample {i}" for i in range(rows)],
        "prompt_id": [f"doc-{index}-{i // 2}" for i in range(rows)],
        "continuation": [i % 2 for i in range(rows)],
        "prefix_len": [3] * rows,
    }
    info = {
        "corpus": PARAMS,
        "shard": index,
        "seed": 100 + index,
        "rows": rows,
        "new_tokens": 2 * rows,
        "expert": EXPERT,
        "amateur": AMATEUR,
    }
    schema = SHARD_SCHEMA.with_metadata({"cdsynth": json.dumps(info, sort_keys=True)})
    write_arrow(pa.Table.from_pydict(columns, schema=schema), path)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A two-shard corpus (4 + 2 rows) with its manifest, as `write_manifest` leaves it."""
    out = tmp_path / "cd_early-50_s1_a0.1_pen-20_k50"
    out.mkdir()
    paths = [out / f"shard-{index:05d}.arrow" for index in range(2)]
    for index, (path, rows) in enumerate(zip(paths, [4, 2])):
        write_shard(path, index, rows)
    write_manifest([str(p) for p in paths], out / "manifest.json", PARAMS)
    return out


def split_card(text: str) -> tuple[dict, str]:
    match = re.fullmatch(r"---\n(.*?)\n---\n(.*)", text, flags=re.DOTALL)
    assert match, "the card must open with a --- front matter block"
    return yaml.safe_load(match[1]), match[2]


def test_front_matter_is_the_hub_format_with_all_shards_as_train(corpus):
    header, _ = split_card(write_card(corpus, STATS).read_text())
    assert header["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "shard-*.arrow"}]}
    ]
    assert header["language"] == ["en"]
    assert header["size_categories"] == ["n<1K"]
    assert header["task_categories"] == ["text-generation"]
    assert header["tags"] == ["synthetic", "contrastive-decoding"]
    assert header["license"] == "other"
    assert header["license_name"]
    assert "CDLA-Sharing-1.0" in header["license_details"]


def test_datasets_loads_every_shard_through_the_card(corpus, tmp_path):
    datasets = pytest.importorskip("datasets")
    write_card(corpus)
    ds = datasets.load_dataset(str(corpus), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 6
    assert ds.column_names == COLUMNS
    assert sorted(ds["text"]) == sorted(
        [f"shard 0 sample {i}" for i in range(4)] + [f"shard 1 sample {i}" for i in range(2)]
    )


def test_body_names_the_method_models_every_setting_and_shard(corpus):
    _, body = split_card(write_card(corpus, STATS).read_text())
    assert body.lstrip().startswith(f"# {corpus.name}\n")
    assert "contrastive decoding" in body
    assert "earlier checkpoint step 50 (CD-Early)" in body
    assert EXPERT in body and AMATEUR in body
    assert "run base, seed 42, at step 400" in body
    for key in PARAMS["scoring"]:
        assert f"`scoring.{key}`" in body
    for key in PARAMS.keys() - {"scoring", "good"}:
        assert f"`{key}`" in body
    assert "| `scoring.ancestral_cut` | -inf |" in body
    assert "| `scoring.top_p` | null |" in body
    for shard in read_json(corpus / "manifest.json")["shards"]:
        assert f"| `{shard['file']}` | {shard['rows']} |" in body
        assert shard["sha256"][:16] in body
    assert "`distinct_tokens.2` | 0.75 |" in body
    assert "`copy_rate_reference` | not computed |" in body
    assert 'datasets.load_dataset("path/to/' in body
    assert "arXiv:2510.08245" in body and "@misc{" in body


def test_the_pyarrow_snippet_reads_the_corpus(corpus):
    body = write_card(corpus).read_text()
    snippet = re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)[1]
    scope: dict = {}
    exec(snippet.replace(f"path/to/{corpus.name}", str(corpus)), scope)
    assert scope["table"].num_rows == 6
    assert scope["settings"]["corpus"] == PARAMS


def test_stats_none_reads_not_computed(corpus):
    body = write_card(corpus).read_text()
    assert "Statistics: not computed." in body


def test_a_rerun_leaves_an_identical_card_untouched(corpus):
    path = write_card(corpus, STATS)
    first = path.read_bytes()
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert write_card(corpus, dict(reversed(STATS.items()))) == path
    assert path.read_bytes() == first
    assert path.stat().st_mtime_ns == 1_000_000_000
    write_card(corpus)  # other statistics: rewritten
    assert path.read_bytes() != first
    assert path.stat().st_mtime_ns != 1_000_000_000
    assert not [p for p in corpus.iterdir() if p.name.endswith(".tmp")]


def test_the_card_does_not_depend_on_key_order():
    manifest = {"params": PARAMS, "shards": [], "totals": {"rows": 0, "new_tokens": 0, "tokens": 0}}
    params = dict(reversed(PARAMS.items())) | {"scoring": dict(reversed(PARAMS["scoring"].items()))}
    shuffled = {"totals": manifest["totals"], "shards": [], "params": params}
    args = {"name": "x", "expert": EXPERT, "amateur": AMATEUR}
    assert dataset_card(manifest, STATS, **args) == dataset_card(shuffled, STATS, **args)


@pytest.mark.parametrize(
    ("scoring", "amateur", "words"),
    [
        (Scoring(method="ancestral", top_p=0.9), None, "temperature 1.0, after top-p 0.9 truncation"),
        (Scoring(method="vhead"), None, "No-Contrast-V-Head"),
        (Scoring(method="cd"), "dropout:0.7", "attention dropout 0.7"),
        (Scoring(method="cd"), "small:small-20@seed42/step2500", "run small-20, seed 42, step 2500"),
        (Scoring(method="cd"), "/ckpt/amateur", "the checkpoint /ckpt/amateur"),
    ],
)
def test_the_summary_describes_each_method(scoring, amateur, words):
    params = PARAMS | {"scoring": scoring.as_dict(), "amateur": amateur}
    manifest = {"params": params, "shards": [], "totals": {"rows": 0, "new_tokens": 0, "tokens": 0}}
    card = dataset_card(manifest, None, name="x", expert=None, amateur=None)
    assert words in card
    split_card(card)


def test_size_categories_follow_the_hub_buckets():
    assert [size_category(n) for n in (0, 999, 1000, 99_999, 100_000, 2_500_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
        "100K<n<1M",
        "1M<n<10M",
    ]


def test_a_corpus_without_a_manifest_is_refused(tmp_path):
    with pytest.raises(DataError, match="manifest.json: not found"):
        write_card(tmp_path)
