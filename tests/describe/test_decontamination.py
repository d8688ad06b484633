"""The decontamination filter: exactly the samples holding an evaluation n-gram are dropped, and counted.

Both of its modules: the filter and the real split's copy (`cdsynth.describe.decontamination`), and a
synthetic corpus's copy (`cdsynth.describe.decontaminated_corpus`), on the same hand-made texts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import write_jsonl, write_reading

from cdsynth.data.corpus import SCHEMA as SPLIT_SCHEMA
from cdsynth.describe import decontamination
from cdsynth.describe.contamination import eval_ngrams, overlap
from cdsynth.describe.decontaminated_corpus import decontaminate_corpus
from cdsynth.describe.decontamination import contaminated_rows, decontaminate_split
from cdsynth.errors import DataError
from cdsynth.io import read_arrow, read_json, write_arrow
from cdsynth.spec.eval_data import TASK_DIRS
from cdsynth.synth.manifest import SHARD_SCHEMA, shard_metadata, write_manifest

# An Entity Tracking prefix of 20 words: its 13-grams are what a long evaluation text is found by.
LONG = "Box 0 contains the blue card and the small tissue, Box 1 contains the small map and the big jacket."
# A BLiMP sentence of 5 words, shorter than n: found only whole.
SHORT = "Who should Derek hug Richard?"
SAMPLES = [
    "Yesterday BOX 0 contains the BLUE card; and the small tissue, box 1 contains the small map... she said",
    "box 0 contains the blue card and the small tissue box 1",  # 12 words of LONG: kept
    "And then: who should derek hug, Richard? Nobody knew.",  # SHORT whole, other case and punctuation
    "Who should Derek hug after all?",  # SHORT without its last word: kept
    "A sample with none of it.",
    "",
]
DROPPED = [0, 2]


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    """The official folder layout, an item or two per task, only LONG and SHORT in the samples above."""
    root = tmp_path / "eval"
    blimp = {"sentence_good": SHORT, "sentence_bad": "Who Derek should hug Richard?", "UID": "island"}
    write_jsonl(root / TASK_DIRS["blimp"] / "island.jsonl", [blimp])
    write_jsonl(
        root / TASK_DIRS["blimp_supplement"] / "hypernym.jsonl",
        [{"sentence_good": "The dog barked loudly.", "sentence_bad": "The dog barked loud."}],
    )
    ewok = {"Context1": "Ali is in the bakery.", "Context2": "Ali is out.", "Target1": "Ali sings opera.",
            "Target2": "Ali hums opera."}  # fmt: skip
    write_jsonl(root / TASK_DIRS["ewok"] / "agent-properties.jsonl", [ewok])
    write_jsonl(
        root / TASK_DIRS["entity_tracking"] / "regular.jsonl",
        [{"input_prefix": LONG, "options": ["a", "b"], "numops": 0}],
    )
    write_jsonl(
        root / TASK_DIRS["wug"] / "wug_adj_nominalization.jsonl",
        [{"sentences": "Make a noun: blicky. blickiness\tMake a noun: blicky. blickity", "ratio": 0.5}],
    )
    write_reading(
        root / TASK_DIRS["reading"] / "reading_data.csv",
        [
            [0, "Arthur placed", "the", "Arthur placed the bars on the counter."],
        ],
    )
    return root


def test_exactly_the_samples_holding_an_evaluation_n_gram_are_contaminated(eval_dir):
    hits = contaminated_rows(pa.array([*SAMPLES, None], pa.string()), eval_ngrams(eval_dir))
    assert np.flatnonzero(hits).tolist() == DROPPED


def test_the_filter_drops_what_the_measurement_counts(eval_dir):
    ngrams = eval_ngrams(eval_dir)
    stats = overlap([pa.array(SAMPLES)], ngrams)
    assert stats["contaminated_samples"] == contaminated_rows(pa.array(SAMPLES), ngrams).sum() == 2


def split_table(texts: list[str]) -> pa.Table:
    columns = {
        "text": texts,
        "source": ["test"] * len(texts),
        "doc_id": [f"doc-{i}" for i in range(len(texts))],
        "words": [len(text.split()) for text in texts],
    }
    return pa.Table.from_pydict(columns, schema=SPLIT_SCHEMA).replace_schema_metadata({"made": "here"})


def test_a_real_split_loses_its_contaminated_documents_whole_and_says_how_many(
    eval_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(decontamination, "BATCH_ROWS", 4)  # batches that split the rows: 4 + 4
    texts = SAMPLES + ["Box 0 contains the blue card and the small tissue, Box 1 contains the small", "end"]
    write_arrow(split_table(texts), tmp_path / "train.arrow")
    stats = decontaminate_split(
        tmp_path / "train.arrow", eval_dir, tmp_path / "out.arrow", tmp_path / "s.json"
    )
    kept = read_arrow(tmp_path / "out.arrow")
    expected = [i for i in range(len(texts)) if i not in (*DROPPED, 6)]
    assert kept.column("doc_id").to_pylist() == [f"doc-{i}" for i in expected]
    assert kept.column("text").to_pylist() == [texts[i] for i in expected]
    assert kept.schema == split_table(texts).schema and kept.schema.metadata == {b"made": b"here"}
    record = {"n": 13, "samples": 8, "dropped_samples": 3, "dropped_share": 0.375, "kept_samples": 5}
    assert stats == read_json(tmp_path / "s.json") == {"samples": 5, "decontamination": record}


def test_a_split_without_contamination_is_copied_row_for_row(eval_dir, tmp_path):
    write_arrow(split_table(["clean text", "more clean text"]), tmp_path / "train.arrow")
    stats = decontaminate_split(
        tmp_path / "train.arrow", eval_dir, tmp_path / "out.arrow", tmp_path / "s.json"
    )
    assert read_arrow(tmp_path / "out.arrow").equals(read_arrow(tmp_path / "train.arrow"))
    assert stats["decontamination"]["dropped_samples"] == 0


PARAMS = {"fixture": "hand-made", "new_tokens": 3}


def write_corpus(root: Path, shards: list[list[str]]) -> Path:
    """A synthetic corpus as `synthesize_shards` lays it out: shards whose metadata names the corpus."""
    paths = []
    for index, texts in enumerate(shards):
        info = {
            "corpus": PARAMS,
            "shard": index,
            "seed": index,
            "rows": len(texts),
            "new_tokens": 3 * len(texts),
        }
        schema = SHARD_SCHEMA.with_metadata({"cdsynth": json.dumps(info, sort_keys=True)})
        rows = {
            "input_ids": [[1, 5 + i, 6, 7, 2] for i in range(len(texts))],
            "text": texts,
            "prompt_id": [f"p{i}" for i in range(len(texts))],
            "continuation": [0] * len(texts),
            "prefix_len": [2] * len(texts),
        }
        paths.append(root / f"shard-{index:05d}.arrow")
        write_arrow(pa.Table.from_pydict(rows, schema=schema), paths[-1])
    write_manifest([str(path) for path in paths], root / "manifest.json", PARAMS)
    return root


def test_a_synthetic_corpus_loses_its_contaminated_samples_and_its_manifest_and_card_say_so(
    eval_dir, tmp_path
):
    corpus = write_corpus(tmp_path / "cd_early", [SAMPLES[:3], SAMPLES[3:]])
    manifest = decontaminate_corpus(corpus, eval_dir, corpus / "decontaminated")
    out = corpus / "decontaminated"
    texts = [read_arrow(out / f"shard-{i:05d}.arrow").column("text").to_pylist() for i in range(2)]
    assert texts == [[SAMPLES[1]], SAMPLES[3:]]
    record = {
        "n": 13,
        "samples": 6,
        "dropped_samples": 2,
        "dropped_share": round(2 / 6, 6),
        "kept_samples": 4,
    }
    assert manifest == read_json(out / "manifest.json")
    assert manifest["decontamination"] == record and manifest["params"] == PARAMS
    assert manifest["totals"] == {"rows": 4, "new_tokens": 12, "tokens": 20}
    assert [shard["rows"] for shard in manifest["shards"]] == [1, 3]
    info = shard_metadata(read_arrow(out / "shard-00000.arrow"))
    assert (info["rows"], info["new_tokens"], info["decontamination"]["dropped_samples"]) == (1, 3, 2)
    card = (out / "README.md").read_text()
    assert "## Decontamination" in card and "2 of 6 samples, 4 kept" in card
    assert card.index("## Decontamination") < card.index("## How to load")
    assert "| `decontamination.dropped_samples` | 2 |" in card
    assert read_json(corpus / "manifest.json")["totals"]["rows"] == 6, "the source corpus is left alone"


def test_the_filtered_corpus_makes_training_documents_of_the_kept_samples(eval_dir, tmp_path, prepared):
    from cdsynth.synth.tokens import build_synthetic_shards

    corpus = write_corpus(tmp_path / "cd_early", [SAMPLES[:3], SAMPLES[3:]])
    decontaminate_corpus(corpus, eval_dir, corpus / "decontaminated")
    meta = build_synthetic_shards(corpus / "decontaminated", prepared["tokenizer"], tmp_path / "tokens")
    assert meta["samples"] == 4


def test_a_shard_that_differs_from_its_manifest_is_refused(eval_dir, tmp_path):
    corpus = write_corpus(tmp_path / "cd_early", [SAMPLES[:3], SAMPLES[3:]])
    (corpus / "shard-00001.arrow").write_bytes((corpus / "shard-00000.arrow").read_bytes())
    with pytest.raises(DataError, match="sha256 differs from manifest.json"):
        decontaminate_corpus(corpus, eval_dir, corpus / "decontaminated")
    assert not (corpus / "decontaminated").exists()
