"""Resolving a corpus source's files before any job: globs, missing paths, download cache names."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdsynth.errors import ConfigError, DataError
from cdsynth.spec.sources import downloads, expand_paths, local_name

WIKI = "wikipedia/wikitext2_raw_test.txt.xz"


def test_expand_paths_globs_sorted_dedup(corpus_dir: Path) -> None:
    paths = expand_paths(["tinystories/*valid*.xz", "tinystories/*.xz", WIKI], corpus_dir)
    names = [p.name for p in paths]
    assert names == [
        "tinystories_v1_valid_head.txt.xz",
        "tinystories_v1_train_head_2316stories.txt.xz",
        "tinystories_v1_train_next_LOWERCASED.txt.xz",
        "wikitext2_raw_test.txt.xz",
    ]
    assert expand_paths([str(corpus_dir / WIKI)]) == [corpus_dir / WIKI]


@pytest.mark.parametrize("pattern", ["nowhere/*.txt.xz", "tinystories/missing.txt.xz", "tinystories"])
def test_expand_paths_nothing_matched(corpus_dir: Path, pattern: str) -> None:
    with pytest.raises(DataError, match="matches") as info:
        expand_paths([pattern], corpus_dir)
    assert pattern in str(info.value) and "shared/data/corpus" in str(info.value)


def test_local_name() -> None:
    assert local_name("https://host.org/data/train.txt.xz?download=1") == "train.txt.xz"
    assert local_name("https://host.org/a%20b.zip") == "a b.zip"
    assert local_name("https://host.org/babylm.zip", "babylm/train_10M/bnc.train") == "bnc.train"
    with pytest.raises(DataError):
        local_name("https://host.org/")


def test_two_downloads_may_not_share_a_cache_file():
    sources = {
        "a": {"train": [{"url": "https://one.org/x/train.txt"}], "test": ["local.txt"]},
        "b": {"train": [{"url": "https://two.org/y/train.txt"}]},
    }
    with pytest.raises(
        ConfigError, match="corpus.sources.b.train: https://two.org/y/train.txt would be cached"
    ):
        downloads(sources)
    sources["b"]["train"][0]["url"] = "https://one.org/x/train.txt"  # the same download twice is one
    assert list(downloads(sources)) == ["resources/downloads/train.txt"]
