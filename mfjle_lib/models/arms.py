"""The arms of a comparison: a registered model at a geometry derived from the run's own.

MF-JLE differs from one ResNet-18 in three ways at once: it is an ensemble of six nets, five of
them look at one place (locality), and their crops see that place at a higher pixel density than
the global net (resolution: S_l / (c·R) against S_g / R, 1 against 0.5 at the cpu preset). Each
arm below changes one of these, so paired differences between arms trained with the same seed
split MF-JLE − ResNet-18 into ensembling + locality + resolution, and the full-resolution
ResNet-18 asks the last question directly: is one net that sees the whole face at the locals'
pixel density as good as MF-JLE?

An arm names a model of the registry (`build.MODELS`) and how its S_g or S_l follow from the
geometry (R, S_g, S_l, c) it is trained beside; studies and lessons read this table, never a
list of names of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

Geometry = Mapping[str, Any]  # source_size, global_size, local_size, crop_fraction


@dataclass(frozen=True)
class Arm:
    """One arm: its name (run folders use it), the registered model, its title, its geometry change."""

    name: str
    model: str
    title: str
    geometry: Callable[[Geometry], dict[str, int]]  # the settings it changes, from the base geometry


def global_density_local_size(g: Geometry) -> int:
    """S_l at which a crop has the global's pixel density: c·S_g (16 at the cpu preset)."""
    return max(1, round(float(g["crop_fraction"]) * int(g["global_size"])))


def local_density_global_size(g: Geometry) -> int:
    """S_g at which the whole face has the locals' pixel density: S_l / c (128 = R at the cpu preset)."""
    return max(1, round(int(g["local_size"]) / float(g["crop_fraction"])))


#: The arms in the order of the gain split (each step changes one thing), then the full-resolution control.
ARMS: dict[str, Arm] = {
    "resnet18": Arm("resnet18", "resnet18", "ResNet-18", lambda g: {}),
    "wholeface": Arm(
        "wholeface", "wholeface", "6 × ResNet-18, whole face", lambda g: {"local_size": int(g["global_size"])}
    ),
    "mfjle_lowres": Arm(
        "mfjle_lowres",
        "mfjle",
        "MF-JLE, crops at the global's density",
        lambda g: {"local_size": global_density_local_size(g)},
    ),
    "mfjle": Arm("mfjle", "mfjle", "MF-JLE", lambda g: {}),
    "resnet18_full": Arm(
        "resnet18_full",
        "resnet18",
        "ResNet-18 at the locals' density",
        lambda g: {"global_size": local_density_global_size(g)},
    ),
}

#: (arm before, arm after, what the step adds): the telescoping split of MF-JLE − ResNet-18.
GAIN_STEPS = (
    ("resnet18", "wholeface", "ensembling"),
    ("wholeface", "mfjle_lowres", "locality"),
    ("mfjle_lowres", "mfjle", "resolution"),
)

#: Paired comparisons beside the split: resolution alone, and MF-JLE against a ResNet-18 that sees as many pixels.
EXTRA_STEPS = (
    ("resnet18", "resnet18_full", "resolution alone (one net)"),
    ("resnet18_full", "mfjle", "MF-JLE over the full-resolution ResNet-18"),
)


def arm(name: str) -> Arm:
    """The arm called `name`; an unknown name is a ConfigError that lists the arms."""
    if name not in ARMS:
        raise ConfigError(f"unknown arm {name!r}; choose from {', '.join(ARMS)}")
    return ARMS[name]


def arm_settings(name: str, base: Geometry) -> dict[str, Any]:
    """The training settings of arm `name` beside a base geometry: its model and the sizes it changes."""
    a = arm(name)
    return {"model": a.model, **a.geometry(base)}
