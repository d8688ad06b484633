"""What defines a training run: the model's architecture and the training recipe. Torch-free.

The config (`models`, `train`, `shards.block_size`) is the one place their values are written: these
classes have no defaults of their own for what a config sets, so a preset's numbers are never repeated
here. A rule hands a run's settings to its script as a flat dict (`TrainSettings.of` rebuilds them).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, fields
from typing import Any

from cdsynth.errors import ConfigError
from cdsynth.spec.mixture import Mixture
from cdsynth.spec.schedule import Checkpoints
from cdsynth.spec.settings import bound_problems, setting

PACKINGS = ("shuffled", "fixed")
# Experiment trackers a run can also log to (`cdsynth.train.loggers`); each is the name of its package.
LOGGERS = ("tensorboard", "wandb", "mlflow")


@dataclass(frozen=True)
class Architecture:
    """A LLaMA architecture (`models.<name>` in the config)."""

    layers: int = setting(whole=True, minimum=1, help="transformer blocks")
    hidden: int = setting(whole=True, minimum=1, help="hidden size")
    heads: int = setting(whole=True, minimum=1, help="attention heads")
    intermediate: int = setting(whole=True, minimum=1, help="feed-forward size")
    max_positions: int = setting(whole=True, minimum=1, help="longest sequence the model takes")
    kv_heads: int | None = setting(None, whole=True, minimum=1, also=(None,), help="key/value heads")
    rope_theta: float = setting(10000.0, exclusive_minimum=0, help="rotary base")
    tie_embeddings: bool = setting(False, help="share input and output embeddings")

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError("invalid architecture:\n  " + "\n  ".join(problems))

    def problems(self) -> list[str]:
        lines = bound_problems(self)
        if lines:
            return lines
        if self.hidden % self.heads:
            lines.append(f"heads: {self.heads} does not divide hidden ({self.hidden})")
        if self.heads % self.key_value_heads:
            lines.append(f"kv_heads: must divide heads ({self.heads})")
        return lines

    @property
    def key_value_heads(self) -> int:
        return self.heads if self.kv_heads is None else self.kv_heads


@dataclass(frozen=True)
class TrainSettings:
    """One training run: `steps` optimizer steps of `batch_size` sequences of `block_size` tokens each.

    A mixture run takes a `mixture.ratio` of its sequences from a synthetic stream
    (`cdsynth.train.packing.MixedBatches`); `packing` says how documents become blocks.
    """

    arch: Architecture
    seed: int = setting(whole=True, minimum=0, help="the run's seed (initialisation, data order)")
    block_size: int = setting(whole=True, minimum=8, help="tokens per training sequence")
    packing: str = setting(
        choices=PACKINGS, help="shuffled: repacked every pass (the authors'); fixed: packed once in order"
    )
    steps: int = setting(whole=True, minimum=1, help="optimizer steps")
    batch_size: int = setting(whole=True, minimum=1, help="sequences per optimizer step")
    micro_batch_size: int = setting(whole=True, minimum=1, help="sequences per forward pass")
    lr: float = setting(minimum=0, help="peak learning rate")
    min_lr_ratio: float = setting(minimum=0, maximum=1, help="the cosine's floor, as a share of the peak")
    warmup_steps: int = setting(whole=True, minimum=0, help="linear warm-up steps")
    warmup_from_zero: bool = setting(help="Hugging Face's warm-up (the authors'): the first update at lr 0")
    weight_decay: float = setting(minimum=0, help="AdamW weight decay of the matrices")
    betas: tuple[float, float] = setting(help="AdamW betas")
    grad_clip: float | None = setting(
        exclusive_minimum=0, also=(None,), help="max gradient norm (None: no clipping, as the authors)"
    )
    eval_blocks: int = setting(whole=True, minimum=1, help="validation blocks at every save")
    compile: bool = setting(help="torch.compile the model")
    checkpoints: Checkpoints = setting(help="when the run saves a checkpoint")
    mixture: Mixture | None = None
    threads: int = setting(1, whole=True, minimum=1, help="CPU threads (the job's, not the config's)")
    loggers: tuple[str, ...] = setting(
        (), choices=LOGGERS, many=True, help="experiment trackers the run also logs its metrics to"
    )

    def __post_init__(self) -> None:
        problems = bound_problems(self)
        if not problems and self.batch_size % self.micro_batch_size:
            problems.append(
                f"batch_size: {self.batch_size} is not a multiple of micro_batch_size "
                f"({self.micro_batch_size})"
            )
        if not problems:
            problems += missing_loggers(self.loggers)
        if problems:
            raise ConfigError("invalid training settings:\n  " + "\n  ".join(problems))

    @classmethod
    def of(cls, recipe: dict[str, Any], arch: dict[str, Any] | Architecture, seed: int, **runtime: Any):
        """The settings of a rule's params (the config's recipe, one `models` entry, the seed), as they
        travel as JSON: the mixture and the checkpoints as dicts, betas and loggers as lists."""
        values = {**recipe, **runtime}
        mixture = values.pop("mixture", None)
        checkpoints = values.pop("checkpoints")
        return cls(
            arch=arch if isinstance(arch, Architecture) else Architecture(**arch),
            seed=seed,
            mixture=Mixture(**mixture) if isinstance(mixture, dict) else mixture,
            checkpoints=Checkpoints(**checkpoints) if isinstance(checkpoints, dict) else checkpoints,
            **{key: tuple(value) if key in ("betas", "loggers") else value for key, value in values.items()},
        )

    @property
    def data_order(self) -> DataOrder:
        return DataOrder(**{spec.name: getattr(self, spec.name) for spec in fields(DataOrder)})


def missing_loggers(loggers: tuple[str, ...]) -> list[str]:
    """A line for each logger whose package is not installed: checked with the config, so that a run never
    trains for hours to fail when it publishes. Finding the package does not import it."""
    missing = [name for name in loggers if not installed(name)]
    return [f"loggers: {name} is not installed; pip install {name}" for name in missing]


def installed(package: str) -> bool:
    """Whether `package` imports as a module. A bare folder of that name on the path (wandb's own output
    folder is `./wandb/`) is found as a namespace package without a file: not the package."""
    spec = importlib.util.find_spec(package)
    return spec is not None and spec.origin not in (None, "namespace")


@dataclass(frozen=True)
class DataOrder:
    """What decides the batches a run trains on, step by step, and so the words it sees: its settings
    less its model and optimizer. A run's word budget depends on these alone, so that a new learning rate
    retrains a run without recounting its budget."""

    seed: int
    block_size: int
    packing: str
    steps: int
    batch_size: int
    micro_batch_size: int
    mixture: Mixture | None = None

    @classmethod
    def of(cls, params: dict[str, Any]) -> DataOrder:
        """From a run's params (a rule's `TrainSettings` as JSON), the mixture as a dict."""
        values = {spec.name: params.get(spec.name) for spec in fields(cls)}
        mixture = values["mixture"]
        return cls(**values | {"mixture": Mixture(**mixture) if isinstance(mixture, dict) else mixture})
