"""Every number in the README's generated blocks comes from the artefacts the lessons read."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

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
