"""Which checkpoints a training run saves and which of them are evaluated. Torch-free, so that the Snakefile
can ask quickly.

Two schedules, alone or together (`train.checkpoints`): every K optimizer steps (the paper's), and the BabyLM
2025 marks, named by the words of training text seen: `chck_1M` ... `chck_9M`, `chck_10M` ... `chck_90M`,
`chck_100M` ... `chck_1000M`. A run saves at the first step whose words seen reach each mark, so which
steps those are depends on the data: the trainer decides them (`babylm_steps`), not the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdsynth.errors import ConfigError
from cdsynth.spec.settings import bound_problems, setting

WORDS_PER_MARK_UNIT = 1_000_000  # a mark's "M"
# The 2025 rules' marks, in millions of words seen.
BABYLM_MARKS = (*range(1, 10), *range(10, 100, 10), *range(100, 1001, 100))


@dataclass(frozen=True)
class Checkpoints:
    """When a run saves a checkpoint (`train.checkpoints`); the last step is always saved."""

    every: int | None = setting(None, whole=True, minimum=1, also=(None,), help="steps between checkpoints")
    babylm: bool = setting(False, help="also save when the words seen first reach each BabyLM mark")

    def __post_init__(self) -> None:
        problems = bound_problems(self)
        if not problems and self.every is None and not self.babylm:
            problems.append("every: set it, or babylm: true (a run saves its last step only otherwise)")
        if problems:
            raise ConfigError("invalid train.checkpoints:\n  " + "\n  ".join(problems))

    def __str__(self) -> str:
        parts = ([f"every {self.every} steps"] if self.every else []) + (
            ["BabyLM marks"] if self.babylm else []
        )
        return " and ".join(parts)

    def fixed_steps(self, steps: int) -> list[int]:
        """The steps saved whatever the data: every `every`, and the last."""
        return sorted(set(range(self.every, steps + 1, self.every) if self.every else ()) | {steps})


def mark_name(millions: int) -> str:
    return f"chck_{millions}M"


def babylm_steps(words_after: Sequence[float]) -> dict[int, str]:
    """{step: mark} for the marks reached, from the words seen after each step (`words_after[s]` after
    step s, `words_after[0]` = 0). A mark is saved at the first step whose words seen reach it; should one
    step cross several marks, it carries the highest."""
    out: dict[int, str] = {}
    marks = iter(BABYLM_MARKS)
    mark = next(marks)
    for step in range(1, len(words_after)):
        while mark is not None and words_after[step] >= mark * WORDS_PER_MARK_UNIT:
            out[step] = mark_name(mark)
            mark = next(marks, None)
    return out


def evaluated_steps(saved: list[int], stride: int, marked: Sequence[int] = ()) -> list[int]:
    """Every `stride`-th saved checkpoint counted back from the last (always evaluated), and every
    checkpoint that carries a BabyLM mark (a submission needs each of them)."""
    return sorted(set(saved[::-1][::stride]) | set(marked))


def fixed_steps_of(train: dict) -> list[int]:
    """The steps a config's `train` section saves whatever the data (`Checkpoints.fixed_steps`)."""
    return Checkpoints(**train["checkpoints"]).fixed_steps(train["steps"])
