"""The saved outputs of the committed real-face runs (`results/<dataset>/<group>_seed<N>/`), read per emotion, per
module and per metric over whatever seeds are committed (lessons 03 and 04a).

`real_faces` reads a study's summary (`table.json`); this module goes back to each run's `test_outputs.npz`
or `val_outputs.npz` for what the summary does not hold. A group is a run name without its seed
(`paper_mfjle_started`, `official_mfjle_scratch`); more seeds landing later simply join it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..evaluation.outputs import Outputs
from ..evaluation.per_label import per_label_report
from ..evaluation.reports import HEADERS, paper_rows
from ..evaluation.study_runs import parse_run_name
from ..method.fusion import MODULE_TITLES
from ..method.metrics import METRIC_KEYS, multilabel_metrics
from .real_faces import run_outputs

#: Rows `distance_to_paper` adds: coverage and one-error with the label-free faces counted the other way.
OTHER_CONVENTIONS = {
    "coverage": "Coverage ↓, label-free faces left out",
    "one_error": "One-error ↓, label-free faces counted",
}


def group_runs(dataset: str, group: str, part: str = "test") -> dict[int, Outputs]:
    """`run_outputs` of a run group named as its folders are without the seed (e.g. 'paper_resnet18_started')."""
    run = parse_run_name(f"{group}_seed0")
    if run is None:
        raise ConfigError(f"{group}: not a run group (split_model_start)")
    return run_outputs(dataset, run["model"], run["split"], run["start"], part)


def _listed(runs: Mapping[int, Outputs] | Sequence[Outputs]) -> list[Outputs]:
    """The outputs of several runs as a list (a mapping by seed gives its values)."""
    return list(runs.values()) if isinstance(runs, Mapping) else list(runs)


def _probs(outputs: Outputs, module: int | None) -> np.ndarray:
    """The fused probabilities, or one module's alone (0 = the global module)."""
    return outputs["fused_probs"] if module is None else outputs["module_probs"][:, module]


def per_label_over_seeds(
    runs: Mapping[int, Outputs] | Sequence[Outputs], module: int | None = None, threshold: float = 0.5
) -> pd.DataFrame:
    """Per emotion over seeds: test faces carrying it (mean), F1 mean and std, AUC mean; of the fusion or one module."""
    reports = [per_label_report(o["labels"], _probs(o, module), threshold) for o in _listed(runs)]
    f1 = pd.concat([r["f1"] for r in reports], axis=1)
    return pd.DataFrame(
        {
            "faces with it": pd.concat([r["support"] for r in reports], axis=1).mean(axis=1),
            "F1 mean": f1.mean(axis=1),
            "F1 std": f1.std(axis=1, ddof=1),
            "AUC mean": pd.concat([r["auc"] for r in reports], axis=1).mean(axis=1),
        }
    )


def module_scores(runs: Mapping[int, Outputs] | Sequence[Outputs], metric: str = "micro_f1") -> pd.DataFrame:
    """`metric` of each module alone and of the saved fusion, mean and std over seeds (one row each, fusion last)."""
    outs = _listed(runs)
    n_modules = outs[0]["module_probs"].shape[1]
    values = np.array(
        [[multilabel_metrics(o["labels"], _probs(o, m))[metric] for m in [*range(n_modules), None]] for o in outs]
    )
    index = [f"{title} alone" for title in MODULE_TITLES[:n_modules]] + ["fused"]
    std = values.std(axis=0, ddof=1) if len(outs) > 1 else np.full(n_modules + 1, np.nan)
    return pd.DataFrame({"mean": values.mean(axis=0), "std": std}, index=pd.Index(index, name=HEADERS[metric]))


def module_label_f1(runs: Mapping[int, Outputs] | Sequence[Outputs], threshold: float = 0.5) -> pd.DataFrame:
    """F1 per emotion (columns) of each module alone (rows, `MODULE_TITLES`), mean over seeds."""
    outs = _listed(runs)
    return pd.DataFrame(
        {
            title: per_label_over_seeds(outs, module=m, threshold=threshold)["F1 mean"]
            for m, title in enumerate(MODULE_TITLES[: outs[0]["module_probs"].shape[1]])
        }
    ).T.rename_axis("module")


def _other_conventions(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Coverage without the label-free faces; one-error counting each of them as an error (no top label is right)."""
    y = np.asarray(labels) > 0.5
    has_label = y.any(axis=1)
    return {
        "coverage": multilabel_metrics(y[has_label], probs[has_label])["coverage"],
        "one_error": float(np.mean(~y[np.arange(len(y)), np.argmax(probs, axis=1)])),
    }


def distance_to_paper(dataset: str, groups: Mapping[str, str], paper: str) -> pd.DataFrame:
    """Each metric's mean over seeds per run group, the paper's row, and the share of the gap from the first group to
    the paper that the last group closes (1: reaches the paper; above 1: passes it); then coverage and one-error with
    the label-free faces counted the other way (the paper states neither convention)."""
    ref = paper_rows(dataset)[paper]
    columns = {}
    for name, group in groups.items():
        outs = _listed(group_runs(dataset, group))
        nine = [multilabel_metrics(o["labels"], o["fused_probs"]) for o in outs]
        other = [_other_conventions(o["labels"], o["fused_probs"]) for o in outs]
        means = {HEADERS[k]: np.mean([m[k] for m in nine]) for k in METRIC_KEYS}
        means |= {title: np.mean([m[k] for m in other]) for k, title in OTHER_CONVENTIONS.items()}
        columns[f"{name} ({len(outs)} seeds)"] = means
    frame = pd.DataFrame(columns)
    frame[paper] = [ref[k] for k in METRIC_KEYS] + [ref[k] for k in OTHER_CONVENTIONS]
    first, last = frame.iloc[:, 0], frame.iloc[:, len(groups) - 1]
    frame["share of the gap closed"] = (last - first) / (frame[paper] - first)
    frame.index.name = "mean over seeds, test"
    return frame


def val_thresholds(study: dict[str, Any], group: str) -> pd.DataFrame:
    """Per seed of a run group (a study's `runs`): the threshold chosen on its validation outputs, and test micro-F1
    at 0.5 and with that choice (one column per seed, then their mean)."""
    pattern = re.compile(rf"{re.escape(group)}_seed(\d+)")
    picked = {int(m.group(1)): run for name, run in study["runs"].items() if (m := pattern.fullmatch(name))}
    if not picked:
        raise ConfigError(f"no run {group}_seed<N> in the study")
    frame = pd.DataFrame(
        {
            f"seed {s}": {
                "threshold chosen on validation": picked[s]["val_choice"]["threshold"],
                "test micro-F1 at 0.5": picked[s]["paper_fusion"]["micro_f1"],
                "test micro-F1 with the choice": picked[s]["val_fusion"]["micro_f1"],
            }
            for s in sorted(picked)
        }
    )
    frame["mean"] = frame.mean(axis=1)
    return frame
