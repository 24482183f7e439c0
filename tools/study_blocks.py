"""The README's real-face blocks: each committed study's table, intervals and paired gaps, between markers.

`tools/readme_blocks.py` writes them with the README's other generated blocks; the lessons read the same
`results/<dataset>/table.json` through `mfjle_lib.course.real_faces`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfjle_lib.course.real_faces import gaps, load_study, rerun_command, study_rows
from mfjle_lib.evaluation.reports import HEADERS, markdown_table
from mfjle_lib.evaluation.study_table import interval_text, mean_std_text
from mfjle_lib.files import replace_block
from mfjle_lib.method.metrics import METRIC_KEYS

#: README markers around the generated real-face tables (the README tool in `tools/` writes them).
README_START, README_END = (
    "<!-- study:{d}:start (generated from results/{d}/table.json; do not edit) -->",
    "<!-- study:{d}:end -->",
)


def readme_block(study: dict[str, Any]) -> str:
    """The README's real-face table: every row of the study with its paper rows, and the best row against the paper."""
    d = study.get("dataset")
    lines = [README_START.format(d=d), "", markdown_table(study_rows(study)), ""]
    best = study.get("best_image_split_mfjle")
    if best:
        gap = study["best_minus_paper_mfjle"]
        lines += [
            f"The image-split MF-JLE row chosen on validation (highest mean validation micro-F1: *{best}*) against the paper's MF-JLE row, + = better than "
            "the paper: " + ", ".join(f"{HEADERS[k]} {gap[k]:+.3f}" for k in METRIC_KEYS) + ".",
            "",
        ]
    lines += [
        "Test micro-F1 over seeds ("
        + (
            "each seed its own split"
            if any(row["split"] != "official" for row in study["rows"].values())
            else "one official split: the seeds differ in training only"
        )
        + "), mean and 95 % interval of the mean (t), at the paper's rule:",
        "",
        *(
            f"- {name}: {row['metrics']['micro_f1']['mean']:.3f}, {interval_text(*row['metrics']['micro_f1']['ci95'], n=len(row['seeds']))}"
            for name, row in study["rows"].items()
            if row["fusion"] == "paper"
        ),
        "",
    ]
    picked = {**gaps(study, kind="mfjle_vs_resnet18"), **gaps(study, kind="arm_step")}
    if picked:
        lines += [
            "Paired by seed, test micro-F1 (mean ± std over the seeds both sides have; each row of the study at the "
            "paper's rule and with fusion + threshold chosen on validation):",
            "",
        ]
        lines += [
            f"- {name}: {mean_std_text(g['mean']['micro_f1'], g['std']['micro_f1'], len(g['seeds']), signed=True)} "
            f"({len(g['seeds'])} seed{'s' if len(g['seeds']) != 1 else ''}; "
            f"95 % interval {interval_text(*g['ci95']['micro_f1'], signed=True, n=len(g['seeds']))})"
            for name, g in picked.items()
        ] + [""]
    lines += [
        f"Command: `{rerun_command(study)}` (ROOT = your copy of the dataset); per-run artefacts, paired gaps per seed, "
        f"versions and times in `results/{d}/`.",
        "",
        README_END.format(d=d),
    ]
    return "\n".join(lines)


def sync_readme(readme: str | Path, dataset: str = "jaffe", check: bool = False) -> bool:
    """Rewrite the block between the README's markers from the committed study; with `check`, only say whether it is current."""
    path = Path(readme)
    text = path.read_text()
    start, end = README_START.format(d=dataset), README_END.format(d=dataset)
    body = readme_block(load_study(dataset)).removeprefix(start).removesuffix(end)
    new = replace_block(text, start, end, body, str(path))
    if check:
        return new == text
    path.write_text(new)
    return True


#: The studies whose README block the README tool in `tools/` generates, when their results folder holds a table.
README_STUDIES = ("jaffe", "ferplus")
