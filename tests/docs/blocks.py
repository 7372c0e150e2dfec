"""The fenced code blocks of the documentation (README.md, docs/**/*.md and the files the site
includes) and the marker each carries.

Every block is preceded by one marker, an HTML comment (invisible on GitHub and on the site):

* ``<!-- run: standalone -->``: run as written, with no broker; its printed output must equal
  the block that follows when that one is marked ``<!-- output -->``;
* ``<!-- run: NAME -->``: run by the runner ``NAME`` of ``tests/docs/test_code_blocks.py``
  (which fills in what a reader must: the broker's address, a private topic, a temporary
  directory) and checked, usually by consuming back what was delivered;
* ``<!-- output -->``: what the block before it prints; checked by that block's runner;
* ``<!-- not-run: REASON -->``: not run, and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
#: What the site shows: the docs pages, the files they include, and the README.
DOCUMENTS: Final = [
    ROOT / "README.md",
    ROOT / "CHANGELOG.md",
    ROOT / "benchmarks" / "RESULTS.md",
    *sorted((ROOT / "docs").rglob("*.md")),
]
_FENCE: Final = re.compile(r"^(`{3,})([\w+-]*)\s*$")
_MARKER: Final = re.compile(r"^<!--\s*(run|not-run|output)(?::\s*(.*?))?\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text, and its marker."""

    document: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    marker: str | None  # run, not-run, output, or None when unmarked
    argument: str  # the runner's name, or the reason not to run

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, language = opening.groups()
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        previous = index - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        marker = _MARKER.match(lines[previous].strip()) if previous >= 0 else None
        found.append(
            Block(
                document=path,
                line=index + 1,
                language=language,
                text="\n".join(lines[index + 1 : end]) + "\n",
                marker=marker.group(1) if marker else None,
                argument=(marker.group(2) or "") if marker else "",
            )
        )
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for path in DOCUMENTS for block in blocks(path)]


def runner_blocks(name: str) -> list[Block]:
    """The blocks marked ``<!-- run: NAME -->``, in document order."""
    return [b for b in all_blocks() if b.marker == "run" and b.argument == name]


def output_after(block: Block) -> Block | None:
    """The ``<!-- output -->`` block right after ``block`` in its document, if any."""
    found = blocks(block.document)
    position = next(i for i, b in enumerate(found) if b.line == block.line)
    if position + 1 < len(found) and found[position + 1].marker == "output":
        return found[position + 1]
    return None
