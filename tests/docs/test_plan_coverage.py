"""docs/plan-coverage.md and the tests agree (unit, no servers): every test-plan case a test
name cites exists in the doc, and the generator reads names and citations as documented."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "plan_coverage", ROOT / "scripts/plan_coverage.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["plan_coverage"] = module
    spec.loader.exec_module(module)
    return module


generator = load_generator()


def test_every_case_a_test_name_cites_is_in_the_coverage_doc() -> None:
    cases = generator.cases_from_doc((ROOT / "docs/plan-coverage.md").read_text())
    assert len(cases) > 100
    unknown = generator.cover(cases, generator.find_test_functions(generator.find_test_files()))
    assert unknown == [], "\n".join(unknown)


def test_test_names_and_texts_are_read_as_documented() -> None:
    assert generator.cases_in_test_name("test_4_2_declined_card") == [(4, 2)]
    assert generator.cases_in_test_name("test_4_2_4_3_and_16_2_declines") == [
        (4, 2),
        (4, 3),
        (16, 2),
    ]
    for not_a_case in ("test_3155_card", "test_100_requests", "test_204_and_304_no_body"):
        assert generator.cases_in_test_name(not_a_case) == []
    assert generator.cases_in_text('"""Alerts (plan 18.2) and plan 4.2, 4.3 and 16.2."""') == [
        (18, 2),
        (4, 2),
        (4, 3),
        (16, 2),
    ]


def test_a_name_citing_a_case_the_doc_lacks_is_reported() -> None:
    cases = generator.cases_from_doc(
        "## 1. Tokens\n\n| case | title | tests |\n| 1.1 | Basic | x |\n"
    )
    found = [generator.FoundTest("t.py::test_1_9_x", "test_1_9_x", "", False)]
    assert generator.cover(cases, found) == ["t.py::test_1_9_x names case 1.9"]
