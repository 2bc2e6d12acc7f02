"""Generate docs/plan-coverage.md: each case of the checkout test plan -> the tests that cover it.

A test covers a case when its name starts with the case number (`test_4_2_declined_...`,
several at once: `test_4_2_4_3_and_16_2_...`), or, listed apart, when its own source (the
docstring or body of that test function) cites it as "plan 18.2". The case list (numbers,
titles, sections) is read from the doc itself, so the doc in the repository stays the
reference; `--plan FILE` reads it from the plan's markdown instead (`#### 4.2 Declined Card`).

    .venv/bin/python scripts/plan_coverage.py            # rewrite docs/plan-coverage.md
    .venv/bin/python scripts/plan_coverage.py --check    # exit 1 if it is not current
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plan-coverage.md"
TEST_ROOTS = ("tests", "services", "tools", "libs")

CaseId = tuple[int, int]

_PLAN_SECTION = re.compile(r"^### (\d+)\. (.+?)\s*$", re.MULTILINE)
_PLAN_CASE = re.compile(r"^#### (\d+)\.(\d+) (.+?)\s*$", re.MULTILINE)
_DOC_SECTION = re.compile(r"^## (\d+)\. (.+?)\s*$", re.MULTILINE)
_DOC_CASE = re.compile(r"^\| (\d+)\.(\d+) \| (.+?) \|", re.MULTILINE)
# "plan 18.2", "plan case 4.4", "plan 4.2, 4.3 and 16.2"
_TEXT_CITATION = re.compile(
    r"\bplan(?: cases?| sections?)? (\d+\.\d+(?:(?:, | and | or |/)\d+\.\d+)*)", re.IGNORECASE
)


@dataclass
class Case:
    section: str
    title: str
    named: list[str] = field(default_factory=list)  # tests named after the case
    cited: list[str] = field(default_factory=list)  # tests whose source cites it
    skipped: list[str] = field(default_factory=list)  # named after it, but always skipped


def cases_from_plan(text: str) -> dict[CaseId, Case]:
    sections = {int(m[1]): m[2] for m in _PLAN_SECTION.finditer(text)}
    return {
        (int(m[1]), int(m[2])): Case(f"{m[1]}. {sections[int(m[1])]}", m[3])
        for m in _PLAN_CASE.finditer(text)
    }


def cases_from_doc(text: str) -> dict[CaseId, Case]:
    sections = {int(m[1]): m[2] for m in _DOC_SECTION.finditer(text)}
    return {
        (int(m[1]), int(m[2])): Case(f"{m[1]}. {sections[int(m[1])]}", m[3])
        for m in _DOC_CASE.finditer(text)
    }


def cases_in_test_name(name: str) -> list[CaseId]:
    """`test_4_2_4_3_and_16_2_declines` -> [(4, 2), (4, 3), (16, 2)]; a name whose leading
    numbers do not pair up or are no case numbers (`test_3155_card`, `test_204_and_304_...`)
    cites nothing."""
    numbers: list[int] = []
    for part in name.removeprefix("test_").split("_"):
        if part.isdigit():
            numbers.append(int(part))
        elif part != "and":
            break
    if len(numbers) < 2 or len(numbers) % 2 or max(numbers) >= 100:
        return []
    return [(numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2)]


def cases_in_text(text: str) -> list[CaseId]:
    found: list[CaseId] = []
    for match in _TEXT_CITATION.finditer(text):
        for number in re.findall(r"\d+\.\d+", match[1]):
            major, minor = number.split(".")
            found.append((int(major), int(minor)))
    return found


def find_test_files(root: Path = ROOT) -> Iterator[Path]:
    for top in TEST_ROOTS:
        for path in sorted((root / top).rglob("test_*.py")):
            if ".venv" not in path.parts and "node_modules" not in path.parts:
                yield path


@dataclass(frozen=True)
class FoundTest:
    ref: str  # path::name
    name: str
    source: str
    always_skipped: bool  # its first statement is pytest.skip(...), or it is marked skip


def _always_skipped(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        if ast.unparse(decorator).startswith("pytest.mark.skip("):
            return True
    body = [
        s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]
    first = body[0] if body else None
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Call)
        and ast.unparse(first.value.func) == "pytest.skip"
    )


def find_test_functions(paths: Iterable[Path], root: Path = ROOT) -> Iterator[FoundTest]:
    for path in paths:
        text = path.read_text()
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                source = ast.get_source_segment(text, node) or ""
                yield FoundTest(f"{rel}::{node.name}", node.name, source, _always_skipped(node))


def cover(cases: dict[CaseId, Case], tests: Iterable[FoundTest]) -> list[str]:
    """Fill each case's tests; returns the references to cases that do not exist."""
    unknown: list[str] = []
    for test in tests:
        named = cases_in_test_name(test.name)
        for case_id in named:
            if case_id in cases:
                target = cases[case_id].skipped if test.always_skipped else cases[case_id].named
                target.append(test.ref)
            else:
                unknown.append(f"{test.ref} names case {case_id[0]}.{case_id[1]}")
        for case_id in dict.fromkeys(cases_in_text(test.source)):
            if case_id in cases and case_id not in named and not test.always_skipped:
                cases[case_id].cited.append(test.ref)
    return unknown


HEADER = """# Checkout test plan coverage

Each case of the checkout acceptance plan, by its number, and the automated tests that cover
it. Generated by `scripts/plan_coverage.py` from the test names (`test_4_2_...` covers 4.2) and
from tests that cite a case in their own text ("plan 18.2"); regenerate it after adding or
renaming tests:

    .venv/bin/python scripts/plan_coverage.py

A case with no test is marked **not covered** (the plan lists some as manual: real wallets on
real devices, screen readers). `tests/docs/test_plan_coverage.py` fails when a test's name cites
a case number that is not in this document.
"""


def render(cases: dict[CaseId, Case]) -> str:
    named = sum(1 for c in cases.values() if c.named)
    cited = sum(1 for c in cases.values() if not c.named and c.cited)
    missing = [f"{a}.{b}" for (a, b), c in sorted(cases.items()) if not c.named and not c.cited]
    lines = [HEADER]
    lines.append(
        f"**{len(cases)} cases: {named} covered by tests named after them, {cited} by tests "
        f"that cite them, {len(missing)} not covered** ({', '.join(missing) or 'none'}).\n"
    )
    section = None
    for (major, minor), case in sorted(cases.items()):
        if case.section != section:
            section = case.section
            lines.append(f"\n## {section}\n")
            lines.append("| case | title | tests |")
            lines.append("|---|---|---|")
        refs = [f"`{ref}`" for ref in sorted(case.named)]
        refs += [f"`{ref}` (cites it)" for ref in sorted(case.cited)]
        tests = "<br>".join(refs) if refs else "**not covered**"
        if case.skipped:
            skipped = ", ".join(f"`{ref}`" for ref in sorted(case.skipped))
            tests += f" (always skipped here: {skipped})"
        lines.append(f"| {major}.{minor} | {case.title} | {tests} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, help="read the cases from the plan's markdown")
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc is not current")
    args = parser.parse_args(argv)
    if args.plan:
        cases = cases_from_plan(args.plan.read_text())
    else:
        cases = cases_from_doc(DOC.read_text())
    if not cases:
        print("no test plan cases found", file=sys.stderr)
        return 1
    unknown = cover(cases, find_test_functions(find_test_files()))
    for line in unknown:
        print(f"warning: {line}, which the plan does not have", file=sys.stderr)
    text = render(cases)
    if args.check:
        current = DOC.exists() and DOC.read_text() == text
        if not current:
            print(f"{DOC.relative_to(ROOT)} is not current: run scripts/plan_coverage.py")
        return 0 if current else 1
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
