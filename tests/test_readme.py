"""The README stays a map, and its links and the docs' links lead somewhere.

* ``README.md`` is under 350 lines and its "Layout" and "Extending lm-collapse" sections start
  within its first 120 lines (a newcomer reaches them on the first screens);
* every relative link of ``README.md``, ``docs/*.md`` and ``configs/README.md`` names an existing
  file, and a ``#anchor`` names a heading of the target, slugged as GitHub slugs them (lower case,
  punctuation but ``-`` and ``_`` dropped, spaces to ``-``, a repeated heading gets ``-1``, ``-2``…);
* every page of ``docs/`` is linked from ``README.md`` (a reference section moved there stays
  reachable);
* no metric function is listed twice in the table of ``docs/metrics.md``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, ROOT / "configs" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: ``[text](target)`` and ``![alt](target)``; the target ends at the first space or ``)``.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> list[str]:
    """The lines of ``text`` outside fenced code blocks."""
    lines, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if not fence:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to hyphens.

    >>> _slug("Lab 1: which toy collapses and why")
    'lab-1-which-toy-collapses-and-why'
    >>> _slug("Scale-out: GPU box, cluster, air-gapped")
    'scale-out-gpu-box-cluster-air-gapped'
    """
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(path.read_text(encoding="utf-8")):
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def test_readme_is_short_and_maps_the_code_first():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 350, f"README.md has {len(lines)} lines; move reference text to docs/"
    headings = {line[3:].strip(): i for i, line in enumerate(lines, 1) if line.startswith("## ")}
    for name in ("Layout", "Extending lm-collapse"):
        assert name in headings, f"README.md has no '## {name}' section"
        assert headings[name] <= 120, f"README.md's '## {name}' starts at line {headings[name]}, past line 120"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for line in _prose(page.read_text(encoding="utf-8")):
        line = re.sub(r"`[^`]*`", "", line)  # a link inside inline code is not a link
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{target} (no file {dest.relative_to(ROOT) if ROOT in dest.parents else dest})")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{target} (no heading '#{anchor}' in {dest.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_every_docs_page_is_linked_from_the_readme():
    readme = README.read_text(encoding="utf-8")
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in LINK.findall(readme)}
    orphans = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not orphans, f"docs/ pages not linked from README.md: {orphans}"


def test_metrics_table_lists_each_function_once():
    lines = _prose((ROOT / "docs" / "metrics.md").read_text(encoding="utf-8"))
    start = next(i for i, line in enumerate(lines) if line.startswith("| function |"))
    names = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        first_cell = line.split("|")[1]
        names += re.findall(r"`(\w+)\(", first_cell)
    assert names, "docs/metrics.md: no function found in the metrics table"
    twice = sorted({name for name in names if names.count(name) > 1})
    assert not twice, f"docs/metrics.md lists {twice} more than once"
