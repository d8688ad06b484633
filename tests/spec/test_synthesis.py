"""The values that define a synthetic corpus: amateurs, GOOD and corpus names, parsed and printed."""

from __future__ import annotations

import pytest

from cdsynth.errors import ConfigError
from cdsynth.spec.synthesis import Amateur, Corpus, Good, Scoring, corpus_name


def test_corpus_names_follow_the_parameters():
    early = Amateur.parse("early:500")
    names = {
        corpus_name(Scoring(method="ancestral"), None),
        corpus_name(Scoring(method="ancestral", top_k=200), None),
        corpus_name(Scoring(method="ancestral", top_k=200, ancestral_cut=-20.0), None),
        corpus_name(Scoring(method="vhead"), None),
        corpus_name(Scoring(method="cd"), early),
        corpus_name(Scoring(method="cd"), Amateur.parse("early:1000")),
        corpus_name(Scoring(method="cd", top_p=0.95), early),
        corpus_name(Scoring(method="cd", penalty=float("-inf")), Amateur.parse("dropout:0.7")),
        corpus_name(Scoring(method="cd"), Amateur.parse("small:small-20@seed42/step2500")),
        corpus_name(Scoring(method="cd"), Amateur.parse("small:small-20@seed43/step2500")),
    }
    assert len(names) == 10
    assert corpus_name(Scoring(method="cd", top_k=200), early) == "cd_early-500_s1_a0.1_pen-20_k200"
    assert (
        corpus_name(Scoring(method="ancestral", top_p=0.9, ancestral_cut=-20.0), None)
        == "ancestral_p0.9_cut-20"
    )
    assert corpus_name(Scoring(method="ancestral", ancestral_cut=-20.0), None) == "ancestral", (
        "nothing is cut"
    )


def test_controls_beyond_the_paper_name_their_corpus_and_are_recorded_only_when_set():
    early = Amateur.parse("early:500")
    controlled = Scoring(
        method="cd", min_p=0.05, repetition_penalty=1.3, no_repeat_ngram=4, amateur_temperature=1.5
    )
    assert corpus_name(controlled, early) == "cd_early-500_s1_a0.1_pen-20_minp0.05_rep1.3_norep4_Tam1.5"
    # a paper corpus keeps the definition it had before the controls existed, so nothing is remade
    assert set(Scoring().as_dict()) == {
        "method", "alpha", "strength", "temperature", "penalty", "top_k", "top_p", "ancestral_cut"
    }  # fmt: skip
    assert Scoring(**controlled.as_dict()) == controlled
    assert Scoring(no_repeat_ngram=3).as_dict()["no_repeat_ngram"] == 3
    assert controlled.history_controls == ["repetition_penalty", "no_repeat_ngram"]
    assert Scoring(min_p=0.1, method="cd", amateur_temperature=2.0).history_controls == []


@pytest.mark.parametrize(
    "text",
    ["early:500", "small:small-20", "small:small-20@seed42", "small:tiny_20/step2500",
     "small:s.1@seed42/step2500", "dropout:0.7", "dropout:0.05"],
)  # fmt: skip
def test_amateurs_print_as_they_parse(text):
    assert str(Amateur.parse(text)) == text
    assert Amateur.parse(str(Amateur.parse(text))) == Amateur.parse(text)


def test_a_small_amateur_takes_goods_seed_and_step_where_it_names_none():
    good_seed, good_step = 43, 2500
    assert Amateur.parse("small:small-20").with_defaults(good_seed, good_step) == Amateur(
        "small", model="small-20", seed=43, step=2500
    )
    named = Amateur.parse("small:small-20@seed42/step1000")
    assert named.with_defaults(good_seed, good_step) == named
    assert Amateur.parse("small:small-20@seed42").with_defaults(good_seed, good_step).step == 2500
    assert Amateur.parse("early:500").with_defaults(good_seed, good_step) == Amateur("early", step=500)
    assert named.slug == "small-small-20-seed42-step1000"


@pytest.mark.parametrize(
    "text", ["early:", "small:", "small:a/b", "dropout:1.0", "dropout:0", "late:5", "early:5 "]
)
def test_a_malformed_amateur_is_refused_with_the_syntax(text):
    with pytest.raises(ConfigError, match="early:STEP, small:MODEL"):
        Amateur.parse(text)


def test_a_corpus_from_the_config_names_its_amateurs_checkpoint():
    good = Good("base", 43, 2500)
    spec = {"method": "cd", "amateur": "small:small-20@seed42", "top_k": 200}
    corpus = Corpus.from_spec(spec, good, last_step=8000)
    assert corpus.amateur == Amateur("small", model="small-20", seed=42, step=2500)
    assert corpus.amateur.run_of(good) == ("small-20", 42)
    assert corpus.name == "cd_small-small-20-seed42-step2500_s1_a0.1_pen-20_k200"
    best = Corpus.from_spec({"method": "cd", "amateur": "small:small-20"}, Good("base", 43, "best"), 8000)
    assert best.amateur.step == 8000 and best.amateur.seed == 43
    assert Corpus.from_spec({"method": "cd", "amateur": "early:500"}, good, 8000).amateur.run_of(good) == (
        "base",
        43,
    )
    assert (
        Corpus.from_spec({"method": "cd", "amateur": "dropout:0.7"}, good, 8000).amateur.run_of(good) is None
    )
    assert good.slug == "base-seed43-step2500"
