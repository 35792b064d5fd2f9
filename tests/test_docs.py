"""The documentation a newcomer follows: every relative link in README.md, docs/*.md and the recipes'
READMEs points at a file that exists (and at a heading of it, for `#anchor` links, slugged as GitHub
slugs headings), the README stays short enough to read top to bottom, and CI still finds the blocks
it runs."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 400
PAGES = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("recipes/**/README.md")])

FENCED_BLOCK = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def prose(markdown):
    """The text links are read from: fenced code blocks and inline code hold commands, not links."""
    return INLINE_CODE.sub("", FENCED_BLOCK.sub("", markdown))


def github_slug(heading):
    """The anchor GitHub gives a heading: its rendered text, lower-cased, punctuation dropped
    (letters, digits, '_', '-' and spaces kept), spaces turned into '-'."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown):
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    seen, result = {}, set()
    for heading in HEADING.findall(FENCED_BLOCK.sub("", markdown)):
        slug = github_slug(heading)
        result.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return result


def broken_links(page):
    problems = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...: not ours to check
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            problems.append(f"{target}: no such file {resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading of {resolved.name} has the anchor #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page):
    problems = broken_links(page)
    assert not problems, "\n".join(problems)


def test_link_checker_reports_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Scaling out: several GPUs\n## Result `x` (a/b)\n## Result `x` (a/b)\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#scaling-out-several-gpus) [ok](other.md#result-x-ab-1) [self](#top)\n"
                    "# Top\n![missing](figures/none.png) [bad anchor](other.md#scaling-out)\n"
                    "`[not a link](nowhere.md)`\n```\n[not a link](nowhere.md)\n```\n")
    assert [problem.split(":")[0] for problem in broken_links(page)] == ["figures/none.png", "other.md#scaling-out"]


def test_readme_fits_a_newcomers_read():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move method detail to docs/<method>.md"


@pytest.mark.parametrize("section", ["Install", "Quickstart", "Test"])
def test_ci_finds_the_readme_block_it_runs(section):
    spec = importlib.util.spec_from_file_location("readme_block", ROOT / ".ci" / "readme_block.py")
    readme_block = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(readme_block)
    assert readme_block.block((ROOT / "README.md").read_text(encoding="utf-8"), section).strip()
