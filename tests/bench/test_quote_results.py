"""bench/quote_results.py: its findings follow from the numbers, and the blocks it rewrites exist."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quote():
    spec = importlib.util.spec_from_file_location("quote_results", REPO / "bench/quote_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def row(name: str, gain: float, **tasks: tuple[float, bool]) -> dict[str, str]:
    """A table CSV row as `read_table` gives it: strings; every task not given at 50, not significant."""
    out = {"experiment": name, "seeds": "2", "muDeltaREL": str(gain)}
    for task in ("perplexity", "blimp", "entity_tracking", "ewok", "wug_accuracy", "reading", "eye_tracking"):
        mean, significant = tasks.get(task, (50.0, False))
        out |= {f"{task}_mean": str(mean), f"{task}_sig": str(bool(significant))}
        out |= {f"{task}_diff_low": "-1.0", f"{task}_diff_high": "1.0"}
    return out


ROLES = {"Baseline": "baseline", "Plain": "no-contrast", "Head": "v-head", "Early": "cd-early"}


def test_the_findings_follow_from_the_numbers(quote):
    rows = [
        row("Baseline", 0, perplexity=(80.0, False)),
        row("Plain", 1.5, perplexity=(76.0, True), entity_tracking=(40.0, 0), wug_accuracy=(70.0, 0)),
        row("Head", -2.0, perplexity=(79.0, False)),
        row("Early", 0.5, perplexity=(78.0, False), entity_tracking=(42.0, 0), wug_accuracy=(60.0, 0)),
    ]
    a, b, c, gains = quote.findings(rows, ROLES, seeds=2)
    assert "(a) Mixtures lower perplexity: partly reproduced** (1 of 3 mixtures" in a
    assert "Ordering here: Plain < Early < Head < Baseline" in a
    # Early beats Plain on Entity Tracking only (EWoK ties at 50, WUG is lower).
    assert "(b) CD beats No-Contrast on Entity Tracking, EWoK and WUG: partly reproduced**" in b
    assert "Entity Tracking 42.00 vs 40.00" in b and "WUG 60.00 vs 70.00" in b
    assert c == "**(c) The early amateur against small and dropout amateurs:** not in this table."
    assert "Plain +1.50%, Head -2.00%, Early +0.50%" in gains


def test_the_amateur_finding_ranks_by_relative_gain(quote):
    rows = [row("Baseline", 0), row("Early", -1.3), row("Small", 0.2), row("Drop", 0.1)]
    roles = {"Baseline": "baseline", "Early": "cd-early", "Small": "cd-small", "Drop": "cd-dropout"}
    findings = quote.findings(rows, roles, seeds=4)
    assert findings[0].startswith("**(a) Mixtures lower perplexity: not reproduced**")
    assert findings[1].startswith("**(c) The early amateur is the best amateur: not reproduced**")
    rows[1]["muDeltaREL"] = "0.3"
    assert "best amateur: reproduced**" in quote.findings(rows, roles, seeds=4)[1]


def test_roles_come_from_what_defines_an_experiment_not_its_name(quote):
    config = yaml.safe_load((REPO / "workflow/presets/mini.yaml").read_text())
    roles = quote.roles(config)
    assert roles["Baseline"] == "baseline" and roles["No-Contrast"] == "no-contrast"
    assert roles["No-Contrast-V-Head"] == "v-head" and roles["CD-Early-120"] == "cd-early"
    assert {roles["CD-Small"], roles["CD-Drop-0.7"]} == {"cd-small", "cd-dropout"}


def test_a_block_is_rewritten_whole_between_its_markers(quote, tmp_path):
    path = tmp_path / "README.md"
    path.write_text("before\n<!-- quoted: demo -->\nold table\n<!-- end quoted: demo -->\nafter\n")
    quote.replace_block(path, "demo", "new table")
    quote.replace_block(path, "demo", "newer table")
    expected = "before\n<!-- quoted: demo -->\nnewer table\n<!-- end quoted: demo -->\nafter\n"
    assert path.read_text() == expected
    with pytest.raises(SystemExit, match="no `<!-- quoted: mini -->`"):
        quote.replace_block(path, "mini", "x")


@pytest.mark.parametrize(
    ("name", "page"), [("demo", "README.md"), ("mini", "docs/reproducing.md"), ("beyond", "README.md")]
)
def test_the_page_and_the_results_have_a_block_for_each_run(quote, name, page):
    assert quote.RUNS[name].page == REPO / page
    for path in (REPO / page, REPO / "bench/RESULTS.md"):
        text = path.read_text()
        assert text.count(f"<!-- quoted: {name} -->") == 1 and text.count(f"<!-- end quoted: {name} -->") == 1
    guide = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    holding = [path for path in guide if f"<!-- quoted: {name} -->" in path.read_text()]
    assert holding == [REPO / page]  # one copy in the guide, the one the script rewrites
