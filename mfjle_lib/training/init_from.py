"""Starting a run from another run of this project (`--init-from`): fine-tuning, not resume.

Every tensor of the new model whose name and shape match a tensor of the other run's
`checkpoint.pt` is copied; the rest keep their initialisation (random, or ImageNet with
`--pretrained`) and are reported in one line: loaded N, skipped M and why. The optimiser, the
learning-rate schedule and the epoch count start fresh. Names are those of the models' state dicts
(whichever form their local nets run in): `global_net.*` in both models, `local_nets.nets.<i>.*` in MF-JLE. So a
resnet18 run
starts MF-JLE's global net, and with `init_locals_from_global` each of the five local nets too.

Geometry rule (docs/DESIGN.md §2): ResNet-18 ends in an adaptive pool, so R, S_g and S_l may
differ between the two runs (the nets see the same face regions at another resolution; printed,
not an error). The crop fraction c may not differ when local nets are copied from local nets:
each would then see another part of the face than the one it learned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..constants import NUM_LABELS, NUM_LANDMARKS
from ..errors import ConfigError
from ..method.models import make_resnet18
from ..models.registry import MODELS, model_spec
from ..models.weights import file_sha256, load_backbone_weights
from .config import TrainConfig
from .run_files import load_checkpoint

LOCAL_PREFIX = "local_nets.nets."
GEOMETRY_ROWS = (("R", "source_size"), ("S_g", "global_size"), ("S_l", "local_size"), ("c", "crop_fraction"))


@dataclass
class InitPlan:
    """What `--init-from` will load: the source checkpoint, and target name -> source name for each match."""

    path: Path
    sha256: str
    source_config: dict
    source_state: dict[str, torch.Tensor]
    pairs: dict[str, str] = field(default_factory=dict)  # target name -> source name (same shape)
    skipped: dict[str, str] = field(default_factory=dict)  # target name -> reason
    unused: int = 0  # source tensors nothing was loaded from
    geometry_lines: list[str] = field(default_factory=list)

    @property
    def source_model(self) -> str:
        """'resnet18' or 'mfjle'."""
        return str(self.source_config.get("model", "?"))

    def describe(self) -> str:
        """The record written to checkpoint config and metrics.json (`init`)."""
        counts = f"loaded {len(self.pairs)}, skipped {len(self.skipped)}"
        return f"run:{self.path} sha256:{self.sha256} ({self.source_model}: {counts})"

    def report(self, target_model: str) -> str:
        """One line: loaded N / skipped M, and why, grouped by reason and by part of the model."""
        line = f"init from {self.path} ({self.source_model} -> {target_model}): loaded {len(self.pairs)} tensors"
        if self.pairs:
            line += f" ({_parts(self.pairs)})"
        line += f", skipped {len(self.skipped)}"
        reasons: dict[str, list[str]] = {}
        for name, why in self.skipped.items():
            reasons.setdefault(why.split(":")[0], []).append(name)
        if reasons:
            line += (
                " (" + "; ".join(f"{len(names)} {why}: {_parts(names)}" for why, names in sorted(reasons.items())) + ")"
            )
        if self.unused:
            line += f"; {self.unused} source tensors unused"
        return line


def _part(name: str) -> str:
    """'global net' or 'local net 3' for a state-dict tensor name (for the report)."""
    if name.startswith(LOCAL_PREFIX):
        return f"local net {int(name[len(LOCAL_PREFIX) :].split('.')[0]) + 1}"
    return name.split(".")[0].replace("_", " ")


def _parts(names) -> str:
    """'global net 122, local net 1 122, ...' in first-seen order; 'heads of ...' when only heads."""
    names = list(names)
    counts: dict[str, int] = {}
    for name in names:
        counts[_part(name)] = counts.get(_part(name), 0) + 1
    heads = "heads of " if names and all(".fc." in name for name in names) else ""
    return heads + ", ".join(f"{part} {n}" for part, n in counts.items())


def checkpoint_of(run_or_checkpoint: str | Path) -> Path:
    """The checkpoint.pt of a run folder, or the file itself; ConfigError when there is none."""
    path = Path(run_or_checkpoint).expanduser()
    if path.is_dir():
        if not (path / "checkpoint.pt").is_file():
            raise ConfigError(
                f"--init-from {path}: no checkpoint.pt in this folder (a run writes it after its first epoch)"
            )
        return path / "checkpoint.pt"
    if not path.exists():
        raise ConfigError(f"--init-from {path}: no such file or folder (give a run folder or its checkpoint.pt)")
    return path


def target_shapes(model: str, num_labels: int = NUM_LABELS) -> dict[str, tuple[int, ...]]:
    """Canonical tensor names and shapes of `model` without building it (one ResNet-18 is enough)."""
    net = {k: tuple(v.shape) for k, v in make_resnet18(num_labels).state_dict().items()}
    shapes = {f"global_net.{k}": s for k, s in net.items()}
    if model_spec(model).has_locals:
        shapes.update({f"{LOCAL_PREFIX}{i}.{k}": s for i in range(NUM_LANDMARKS) for k, s in net.items()})
    return shapes


def geometry_table(source: dict, cfg: TrainConfig, copies_locals: bool) -> list[str]:
    """R, S_g, S_l, c of both runs side by side; ConfigError when a difference changes what a net sees."""
    now = cfg.geometry()
    lines = [f"{'geometry':<9}{'source run':>12}{'this run':>12}"]
    for label, key in GEOMETRY_ROWS:
        a, b = source.get(key), now[key]
        note = "" if a == b else "  differs: same face region, another resolution (allowed)"
        lines.append(f"{label:<9}{a!s:>12}{b!s:>12}{note}")
    if copies_locals and source.get("crop_fraction") != now["crop_fraction"]:
        raise ConfigError(
            f"--init-from: the source's local nets learned crops of c={source.get('crop_fraction')} of the face, "
            f"this run cuts c={now['crop_fraction']}: they would see another part of the face; use --crop-fraction "
            f"{source.get('crop_fraction')}"
        )
    if copies_locals:
        lines[-1] = lines[-1].replace("  differs", "")
    return lines


def is_head(name: str) -> bool:
    """True for a classifier-head tensor (`*.fc.weight`, `*.fc.bias`) of any net."""
    return ".fc." in f".{name}"


def match(
    target: dict[str, tuple[int, ...]],
    source: dict[str, torch.Tensor],
    locals_from_global: bool,
    fresh_head: bool = False,
) -> tuple[dict[str, str], dict[str, str], int]:
    """Target name -> source name for every same-shape tensor; skipped names with the reason; unused count.

    `fresh_head`: the classifier heads keep their fresh initialisation (a head trained on another
    dataset's label priors can hurt the thresholded metrics; `--init-head fresh`).
    """
    pairs, skipped = {}, {}
    for name, shape in target.items():
        if fresh_head and is_head(name):
            skipped[name] = "fresh head (--init-head fresh)"
            continue
        src = name
        if locals_from_global and name.startswith(LOCAL_PREFIX):
            src = "global_net." + name[len(LOCAL_PREFIX) :].split(".", 1)[1]
        if src not in source:
            skipped[name] = "missing from the source run"
        elif tuple(source[src].shape) != tuple(shape):
            skipped[name] = f"shape mismatch: {src} {tuple(source[src].shape)} vs {tuple(shape)}"
        else:
            pairs[name] = src
    unused = len(set(source) - set(pairs.values()))
    return pairs, skipped, unused


def plan_init(cfg: TrainConfig) -> InitPlan | None:
    """Check that every start `cfg` asks for can deliver, before anything is written.

    `--weights`/`--pretrained` are loaded once into a throwaway net (ConfigError naming the file or
    the reason); `--init-from` is read, matched by name and shape, and its geometry compared.
    """
    if cfg.pretrained or cfg.weights is not None:
        load_backbone_weights([make_resnet18()], cfg.pretrained, cfg.weights)
    if cfg.init_locals_from_global and not cfg.init_from:
        raise ConfigError("--init-locals-from-global needs --init-from RUN")
    if cfg.init_locals_from_global and not model_spec(cfg.model).has_locals:
        raise ConfigError(
            "--init-locals-from-global applies to a model with local nets "
            f"({', '.join(n for n, s in MODELS.items() if s.has_locals)}), not {cfg.model}"
        )
    if not cfg.init_from:
        if cfg.init_head != "carry":
            raise ConfigError("--init-head fresh needs --init-from RUN")
        return None
    path = checkpoint_of(cfg.init_from)
    payload = load_checkpoint(path)
    source_config, source_state = payload["config"], payload["model_state"]
    source_has_locals = source_config.get("model") in MODELS and model_spec(source_config["model"]).has_locals
    copies_locals = model_spec(cfg.model).has_locals and source_has_locals and not cfg.init_locals_from_global
    lines = geometry_table(source_config, cfg, copies_locals)
    pairs, skipped, unused = match(
        target_shapes(cfg.model), source_state, cfg.init_locals_from_global, cfg.init_head == "fresh"
    )
    if not pairs:
        raise ConfigError(
            f"--init-from {path}: no tensor matches this model by name and shape ({source_config.get('model')} -> "
            f"{cfg.model})"
        )
    return InitPlan(path, file_sha256(path), source_config, source_state, pairs, skipped, unused, lines)


def apply_init(
    model: torch.nn.Module, plan: InitPlan, target_model: str, show: Callable[[str], None] | None = print
) -> str:
    """Copy the planned tensors into `model` in place (any local-net form); return the `init` record."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    unexpected = set(plan.pairs) - set(state)
    if unexpected:
        raise ConfigError(f"--init-from {plan.path}: this model has no tensor {sorted(unexpected)[0]}")
    for name, src in plan.pairs.items():
        state[name] = plan.source_state[src].to(dtype=state[name].dtype)
    model.load_state_dict(state)
    if show is not None:
        for line in plan.geometry_lines:
            show(line)
        show(plan.report(target_model))
    return plan.describe()


def init_record(base: str, plan: InitPlan | None) -> str:
    """The `init` written beside the run: the backbone start, or the run it started from over it."""
    if plan is None:
        return base
    return plan.describe() + ("" if base == "random" else f"; rest: {base}")
