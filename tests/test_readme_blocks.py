"""Every number in the README's generated blocks comes from the artefacts the lessons read."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mfjle_lib.course import timing
from mfjle_lib.errors import ConfigError
from mfjle_lib.files import replace_block
from tools import readme_blocks

REPO = Path(__file__).resolve().parents[1]


def test_readme_blocks_are_current() -> None:
    assert readme_blocks.sync(REPO / "README.md", check=True) == [], "run `python -m tools.readme_blocks`"


@pytest.mark.parametrize("name", list(readme_blocks.BLOCKS))
def test_a_retyped_number_is_caught(tmp_path: Path, name: str) -> None:
    copy = tmp_path / "README.md"
    shutil.copyfile(REPO / "README.md", copy)
    text = copy.read_text(encoding="utf-8")
    start, end = readme_blocks.MARK_START.format(name=name), readme_blocks.MARK_END.format(name=name)
    head, rest = text.split(start, 1)
    body, tail = rest.split(end, 1)
    changed = re.sub(r"\d", lambda m: str((int(m.group()) + 1) % 10), body, count=1)  # one digit, retyped wrong
    assert changed != body
    copy.write_text(head + start + changed + end + tail, encoding="utf-8")
    assert readme_blocks.sync(copy, check=True) == [name]
    readme_blocks.sync(copy)  # and the generator puts it back
    assert copy.read_text(encoding="utf-8") == text


def test_a_missing_marker_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no '<!-- x -->'"):
        replace_block("no markers here", "<!-- x -->", "<!-- /x -->", "body", "README.md")
    assert replace_block("a\n<s>\nold\n<e>\nz", "<s>", "<e>", "new") == "a\n<s>\n\nnew\n\n<e>\nz"


# ------------------------------------------------------------------ the training-step ratio, written in one place
#: A ratio written as a number followed by × (or x), e.g. "3.97×".
RATIO = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[×x](?!\w)")
#: A ratio written in words beside steps or epochs ("about four ResNet-18 steps"): the README block says it in digits.
SPELLED = re.compile(
    r"\b(?:about|roughly|nearly|some)\s+(?:two|three|four|five|six)\s+(?:ResNet-18\s+)?(?:steps?|epochs?)\b", re.I
)
GENERATED = re.compile(r"<!-- ([\w:]+):start .*?<!-- \1:end -->", re.S)


def _prose() -> dict[str, str]:
    """What people read besides the generated blocks: the README outside them, docs/*.md, the lessons' markdown."""
    texts = {"README.md": GENERATED.sub("", (REPO / "README.md").read_text(encoding="utf-8"))}
    texts |= {f"docs/{p.name}": p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").glob("*.md"))}
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
        texts[f"notebooks/{path.name}"] = "\n\n".join(markdown)
    return texts


def step_ratios(text: str) -> list[str]:
    """The ratios written in a paragraph or list item that speaks of a (training) step."""
    chunks = re.split(r"\n\s*\n|\n(?=\s*[-*] )|\n(?=\d+\. )", text)
    return [m.group(1) for c in chunks if re.search(r"\bsteps?\b", c) for m in RATIO.finditer(c)]


def _benchmark_ratios() -> list[float]:
    """Every ratio the committed benchmark reports give (README speed block, every CPU kind): steps, FLOPs, spread."""
    values = []
    for reports in readme_blocks.speed_reports().values():
        for report in reports.values():
            values += [report["train_step_ratio"], report["train_flop_ratio"], report["flop_ratio"]]
            values += [float(x) for x in report["train_step_ratio_spread"].split(" / ")]
    # The experiments docs/SPEED.md quotes (benchmarks/bench_backend.py, bench_tiny_maps.py), per CPU kind.
    found = [
        p for pattern in ("*/backend*.json", "*/tiny_maps*.json") for p in (REPO / timing.BENCHMARK_DIR).glob(pattern)
    ]
    for path in sorted(found):
        values += list(json.loads(path.read_text(encoding="utf-8"))["train_step_ratio"].values())
    return values


def _matches(number: str, values: list[float]) -> bool:
    digits = len(number.split(".")[1]) if "." in number else 0
    return any(round(v, digits) == float(number) for v in values)


def test_a_retyped_training_step_ratio_is_the_benchmarks() -> None:
    """One source for the MF-JLE / ResNet-18 training-step ratio: the benchmark reports behind the README block."""
    values = _benchmark_ratios()
    for name, text in _prose().items():
        wrong = [n for n in step_ratios(text) if not _matches(n, values)]
        assert not wrong, f"{name}: step ratio(s) {wrong} differ from benchmarks/results (the README's speed block)"
        assert not SPELLED.search(text), f"{name}: {SPELLED.search(text).group()!r}: cite the README's speed block"


def test_the_ratio_check_catches_a_retyped_number() -> None:
    values = _benchmark_ratios()
    assert step_ratios("an MF-JLE training step costs 3.83× a ResNet-18 step for 2.25× the FLOPs.") == ["3.83", "2.25"]
    assert not _matches("3.83", values) and _matches("2.25", values)
    assert step_ratios("MF-JLE does 1.4× the work.") == []  # not about a step
    assert SPELLED.search("a step costs about four ResNet-18 steps")
    old_speed = "- an MF-JLE step takes 3.97× a ResNet-18 step.\n  At the paper geometry 1.54× for 1.41×"
    assert step_ratios(old_speed) == ["3.97", "1.54", "1.41"]


def test_the_paper_geometry_step_target_holds() -> None:
    """docs/SPEED.md: at the paper's geometry a step costs at most 1.1 × the FLOP ratio (the lessons' CPU kind)."""
    paper = readme_blocks._bench(readme_blocks.LESSON_CPU_KIND, "paper")
    assert paper["train_step_ratio"] <= 1.1 * paper["train_flop_ratio"]


def test_every_speed_report_names_its_machine_and_date() -> None:
    """docs/SPEED.md keeps one table per CPU kind with its date: each report says where and when it was made."""
    for kind, reports in readme_blocks.speed_reports().items():
        for report in reports.values():
            assert report["machine"]["cpu_kind"] == kind and len(report["date"]) == 10, kind
    assert readme_blocks.speed_tables().count("### ") == len(readme_blocks.speed_reports())
