"""What defines a synthetic corpus: scoring settings, amateur and backend, and the names derived from them.

Nothing here imports torch: the Snakefile reads these definitions every time it is parsed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from cdsynth.errors import ConfigError
from cdsynth.spec.settings import bound_problems, setting

BACKENDS = ("torch", "vllm")
METHODS = ("ancestral", "vhead", "cd")
AMATEUR_KINDS = ("early", "small", "dropout")
_AMATEUR_SYNTAX = re.compile(
    r"early:(?P<early>\d+)"
    r"|small:(?P<model>[A-Za-z0-9_.-]+)(?:@seed(?P<seed>\d+))?(?:/step(?P<step>\d+))?"
    r"|dropout:(?P<dropout>0\.\d*[1-9])"
)


@dataclass(frozen=True)
class Good:
    """The GOOD (expert) checkpoint: the baseline run (`model`, `seed`) at `step`, or "best" (its lowest
    validation loss)."""

    model: str
    seed: int
    step: int | str

    @property
    def slug(self) -> str:
        """GOOD's part of a synthetic corpus's path, e.g. `base-seed43-step2500`."""
        return f"{self.model}-seed{self.seed}-step{self.step}"


@dataclass(frozen=True)
class Amateur:
    """The BAD model of a CD corpus, written `early:STEP`, `small:MODEL[@seedS][/stepN]` or `dropout:P`.

    - early: GOOD's own run at an earlier checkpoint STEP (the paper's CD-Early-k);
    - small: a separately trained smaller model, run (MODEL, seed S) at checkpoint N (CD-Small-r; the
      authors' CD-Small-20 is `small:small-20@seed42/step2500`); a seed or step left out is GOOD's;
    - dropout: GOOD itself with attention dropout P, kept in train mode while it scores (CD-Drop-p).
    """

    kind: str = setting(choices=AMATEUR_KINDS, help="early, small or dropout")
    step: int | None = None
    model: str | None = None
    seed: int | None = None
    dropout: float | None = setting(
        None, exclusive_minimum=0, exclusive_maximum=1, also=(None,), help="GOOD's attention dropout"
    )

    def __post_init__(self) -> None:
        problems = bound_problems(self)
        if problems:
            raise ConfigError("invalid amateur:\n  " + "\n  ".join(problems))

    @classmethod
    def parse(cls, text: str) -> Amateur:
        match = _AMATEUR_SYNTAX.fullmatch(text)
        if match is None:
            raise ConfigError(
                f"amateur {text!r}: write early:STEP, small:MODEL[@seedS][/stepN] or dropout:P (0 < P < 1)"
            )
        if match["early"] is not None:
            return cls("early", step=int(match["early"]))
        if match["dropout"] is not None:
            return cls("dropout", dropout=float(match["dropout"]))
        seed, step = match["seed"], match["step"]
        return cls(
            "small",
            model=match["model"],
            seed=None if seed is None else int(seed),
            step=None if step is None else int(step),
        )

    def __str__(self) -> str:
        if self.kind == "early":
            return f"early:{self.step}"
        if self.kind == "dropout":
            return f"dropout:{self.dropout:g}"
        seed = "" if self.seed is None else f"@seed{self.seed}"
        step = "" if self.step is None else f"/step{self.step}"
        return f"small:{self.model}{seed}{step}"

    def with_defaults(self, seed: int, step: int) -> Amateur:
        """A small amateur with GOOD's seed and step where it names none; other kinds as they are."""
        if self.kind != "small":
            return self
        return replace(
            self,
            seed=seed if self.seed is None else self.seed,
            step=step if self.step is None else self.step,
        )

    def run_of(self, good: Good) -> tuple[str, int] | None:
        """The training run (model, seed) whose checkpoint `step` this amateur is; None for dropout."""
        if self.kind == "dropout":
            return None
        return (good.model, good.seed) if self.kind == "early" else (self.model, self.seed)

    @property
    def slug(self) -> str:
        """The amateur's part of a corpus directory name."""
        return re.sub(r"[:@/]", "-", str(self))


# Scoring controls the paper does not have, and those of them that need each row's history.
BEYOND_PAPER = ("min_p", "repetition_penalty", "no_repeat_ngram", "amateur_temperature")
HISTORY_CONTROLS = ("repetition_penalty", "no_repeat_ngram")


def _off(name: str) -> Any:
    """A scoring field's default, the value that leaves it out of the rule."""
    return Scoring.__dataclass_fields__[name].default


@dataclass(frozen=True)
class Scoring:
    """How next-token scores are formed (the rule itself: `cdsynth.synth.scoring`); the defaults are the
    paper's."""

    method: str = setting(
        "cd", choices=METHODS, help="ancestral: plain sampling; vhead: head-masked; cd: contrastive decoding"
    )
    alpha: float = setting(
        0.1, exclusive_minimum=0, exclusive_maximum=1, help="the head: tokens with p_G > alpha * max p_G"
    )
    strength: float = setting(1.0, minimum=0, help="contrast strength lambda")
    temperature: float = setting(1.0, exclusive_minimum=0, help="divides both models' logits")
    penalty: float = setting(-20.0, maximum=0, help="score of tokens outside the head (-inf: strict CD)")
    top_k: int | None = setting(None, whole=True, minimum=1, also=(None,), help="keep the k best scores")
    top_p: float | None = setting(
        None,
        exclusive_minimum=0,
        maximum=1,
        also=(None,),
        help="keep the smallest set of scores with mass >= p",
    )
    ancestral_cut: float = setting(
        float("-inf"),
        maximum=0,
        help="ancestral + top-k/top-p: the raw logit of cut tokens (-inf removes them; the authors used -20)",
    )
    # Beyond the paper (docs/synthesis.md, "Repetition controls"): off by default.
    min_p: float | None = setting(
        None,
        exclusive_minimum=0,
        exclusive_maximum=1,
        also=(None,),
        help="keep tokens with p_G >= min_p * max p_G, cut like top-p (after it)",
    )
    repetition_penalty: float = setting(
        1.0,
        exclusive_minimum=0,
        help="scores of tokens already in the row (prompt or generated) divided by it where positive, "
        "multiplied where negative, as Hugging Face's (1: off)",
    )
    no_repeat_ngram: int | None = setting(
        None, whole=True, minimum=1, also=(None,), help="no n-gram occurs twice in a row's generated text"
    )
    amateur_temperature: float | None = setting(
        None, exclusive_minimum=0, also=(None,), help="divides the amateur's logits (None: `temperature`)"
    )

    def __post_init__(self) -> None:
        problems = bound_problems(self)
        if self.method != "ancestral" and self.ancestral_cut != float("-inf"):
            problems.append("ancestral_cut: only ancestral sampling uses it (head methods cut to `penalty`)")
        if self.method != "cd" and self.amateur_temperature is not None:
            problems.append("amateur_temperature: only the `cd` method has an amateur")
        if problems:
            raise ConfigError("invalid scoring settings:\n  " + "\n  ".join(problems))

    @property
    def needs_amateur(self) -> bool:
        return self.method == "cd"

    @property
    def history_controls(self) -> list[str]:
        """The controls set here that read a row's earlier tokens (which vLLM's compute_logits cannot)."""
        return [name for name in HISTORY_CONTROLS if getattr(self, name) != _off(name)]

    @property
    def cut_value(self) -> float:
        """What a truncated entry scores: the penalty for head methods, `ancestral_cut` for plain sampling.

        Plain sampling's scores are the temperature-scaled logits, so `ancestral_cut` is a raw logit, as in
        the authors' top-k / top-p processors (-20); -inf removes the cut tokens, as standard sampling does.
        """
        return self.ancestral_cut if self.method == "ancestral" else self.penalty

    def as_dict(self) -> dict:
        """Every paper setting, and the controls beyond the paper only where set: a corpus made before
        they existed keeps its recorded definition, so Snakemake does not remake it."""
        return {
            name: value
            for name, value in asdict(self).items()
            if name not in BEYOND_PAPER or value != _off(name)
        }


def corpus_name(scoring: Scoring, amateur: Amateur | None) -> str:
    """A readable directory name that changes whenever a scoring parameter does."""
    parts = [scoring.method]
    if scoring.needs_amateur:
        parts += [amateur.slug, f"s{scoring.strength:g}"]
    if scoring.method != "ancestral":
        parts += [f"a{scoring.alpha:g}", f"pen{scoring.penalty:g}"]
    if scoring.top_k is not None:
        parts.append(f"k{scoring.top_k}")
    if scoring.top_p is not None:
        parts.append(f"p{scoring.top_p:g}")
    truncated = scoring.top_k is not None or scoring.top_p is not None
    if scoring.method == "ancestral" and truncated and scoring.ancestral_cut != float("-inf"):
        parts.append(f"cut{scoring.ancestral_cut:g}")
    if scoring.temperature != 1:
        parts.append(f"T{scoring.temperature:g}")
    if scoring.min_p is not None:
        parts.append(f"minp{scoring.min_p:g}")
    if scoring.repetition_penalty != 1:
        parts.append(f"rep{scoring.repetition_penalty:g}")
    if scoring.no_repeat_ngram is not None:
        parts.append(f"norep{scoring.no_repeat_ngram}")
    if scoring.amateur_temperature is not None:
        parts.append(f"Tam{scoring.amateur_temperature:g}")
    return "_".join(parts)


@dataclass(frozen=True)
class Corpus:
    """One synthetic corpus: how its tokens are scored and, for CD, its amateur."""

    scoring: Scoring
    amateur: Amateur | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any], good: Good, last_step: int) -> Corpus:
        """A config corpus spec; a small amateur takes GOOD's seed and step (the last step for `best`)."""
        scoring = Scoring(**{key: value for key, value in spec.items() if key != "amateur"})
        if "amateur" not in spec:
            return cls(scoring)
        step = last_step if good.step == "best" else good.step
        return cls(scoring, Amateur.parse(spec["amateur"]).with_defaults(good.seed, step))

    @property
    def amateur_dropout(self) -> float | None:
        """The attention dropout of a dropout amateur; None for any other corpus."""
        return self.amateur and self.amateur.dropout

    @property
    def name(self) -> str:
        """Its directory name, derived from every scoring parameter and the amateur (`corpus_name`)."""
        return corpus_name(self.scoring, self.amateur)


def amateur_problem(method: str, has_amateur: bool) -> str | None:
    """Contrastive decoding needs an amateur, and the other methods use none."""
    if method == "cd" and not has_amateur:
        return "the `cd` method needs an amateur"
    if method != "cd" and has_amateur:
        return "only the `cd` method uses an amateur"
    return None


def vllm_problem(scoring: Scoring) -> str | None:
    """vLLM hands `compute_logits` hidden states alone, without the rows' tokens, so the controls that read
    a row's history cannot run there."""
    if not scoring.history_controls:
        return None
    return (
        f"{', '.join(scoring.history_controls)}: the vllm backend cannot apply it (its compute_logits sees "
        "no row's earlier tokens); use the torch backend (synth.backend: torch, or --backend torch), or "
        "leave the control out"
    )


def backend_for(backend: str, amateur_dropout: float | None) -> str:
    """The backend that can make the corpus: vLLM's attention kernels have no dropout amateur."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    return "torch" if amateur_dropout is not None else backend
