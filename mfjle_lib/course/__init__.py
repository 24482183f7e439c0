"""Course: what the lessons call as they run: setup, cached and released runs, ablations, the demo, materials, figures.

What only builds the repository (executing and timing the lessons, releasing runs, the README's generated blocks)
lives outside the package, in `tools/`.
"""

from __future__ import annotations

from . import ablations, controls, face_codes, plots
from .ablations import (
    compare_histories,
    compare_outputs,
    compare_weights,
    fusion_panel,
    lambda_check,
    lambda_weights,
    mean_std,
    pick_examples,
    refuse_over_seeds,
    single_local_weights,
    split_outputs,
    train_seeds,
)
from .demo import run_demo
from .lesson import (
    IS_COLAB,
    RUN_MODES,
    CourseParams,
    describe_config,
    describe_environment,
    lesson_setup,
    read_env_flag,
    read_runs_mode,
    run_name,
    run_with_weights,
    train_cached,
    use_drive,
)
from .materials import checkpoint_caption, module_table, sample_photos, subject_overlap
from .timing import lesson_times

__all__ = [
    "IS_COLAB",
    "controls",
    "RUN_MODES",
    "CourseParams",
    "ablations",
    "checkpoint_caption",
    "face_codes",
    "compare_histories",
    "compare_outputs",
    "compare_weights",
    "describe_config",
    "describe_environment",
    "fusion_panel",
    "lambda_check",
    "lambda_weights",
    "lesson_setup",
    "lesson_times",
    "mean_std",
    "module_table",
    "pick_examples",
    "plots",
    "read_env_flag",
    "read_runs_mode",
    "refuse_over_seeds",
    "run_demo",
    "run_name",
    "run_with_weights",
    "sample_photos",
    "single_local_weights",
    "split_outputs",
    "subject_overlap",
    "train_cached",
    "train_seeds",
    "use_drive",
]
