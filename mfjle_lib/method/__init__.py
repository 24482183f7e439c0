"""The method of the MF-JLE paper (IEEE Access 2021) in one package, to read beside the paper in one sitting.

In the paper's order: `crops.py` (Section III.B: the five local images), `models.py` (Sections
III.A-B, Figs. 1 and 3: the ResNet-18 module, the baseline, MF-JLE and its locality control),
`losses.py` (Eqs. 1-2), `step.py` (Algorithm 1), `fusion.py` (Section III.C), `metrics.py`
(Section IV.B, Eqs. 3-10). It imports torch, torchvision, numpy and the package's constants and
errors only: the data, the trainer, the speed work and the course are built around it.
"""

from __future__ import annotations

from .crops import SAMPLING_RATIO, crop_boxes, cut_crops, hflip
from .fusion import (
    ACTIVATIONS,
    DEFAULT_LAMBDA,
    DEFAULT_LAMBDAS,
    MODULE_NAMES,
    MODULE_TITLES,
    activate,
    check_fusion_weights,
    expand_lambdas,
    fuse,
    module_probs,
    paper_fusion_weights,
)
from .losses import LOSS_NAMES, bce_loss, joint_loss, module_loss, softmax_ce_loss
from .metrics import (
    LOWER_IS_BETTER,
    METRIC_BY_KEY,
    METRIC_KEYS,
    METRICS,
    Metric,
    coverage,
    multilabel_metrics,
    multilabel_report,
    one_error,
    ranking_mask,
)
from .models import (
    MFJLE,
    LoopLocalNets,
    ModelOutput,
    ResNet18Baseline,
    WholeFaceEnsemble,
    make_resnet18,
    resize_global,
)
from .step import train_step

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_LAMBDA",
    "DEFAULT_LAMBDAS",
    "LOSS_NAMES",
    "LOWER_IS_BETTER",
    "METRICS",
    "METRIC_BY_KEY",
    "METRIC_KEYS",
    "MFJLE",
    "MODULE_NAMES",
    "MODULE_TITLES",
    "SAMPLING_RATIO",
    "LoopLocalNets",
    "Metric",
    "ModelOutput",
    "ResNet18Baseline",
    "WholeFaceEnsemble",
    "activate",
    "bce_loss",
    "check_fusion_weights",
    "coverage",
    "crop_boxes",
    "cut_crops",
    "expand_lambdas",
    "fuse",
    "hflip",
    "joint_loss",
    "make_resnet18",
    "module_loss",
    "module_probs",
    "multilabel_metrics",
    "multilabel_report",
    "one_error",
    "paper_fusion_weights",
    "ranking_mask",
    "resize_global",
    "softmax_ce_loss",
    "train_step",
]
