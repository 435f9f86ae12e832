"""Long fuzzing run of bad input: tests/test_fuzz.py with thousands of cases per generator.

    .venv/bin/python bench/fuzz.py [EXAMPLES]        # default 2000

Sets FUZZ_EXAMPLES=EXAMPLES (each in-process generator tries that many cases, each subprocess one
EXAMPLES // 25) and prints, per test, the cases run (shrinking included), the cases that broke the
promise, and the time; then the falsifying example of each failed test. Exit code 1 if any failed.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Outcomes:
    """pytest plugin: outcome, duration and failure text of each test."""

    def __init__(self) -> None:
        self.reports: dict[str, object] = {}

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or report.outcome == "failed":
            self.reports[report.nodeid.split("::")[-1]] = report


def main() -> int:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    os.environ["FUZZ_EXAMPLES"] = str(examples)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import pytest

    outcomes = Outcomes()
    t = time.perf_counter()
    pytest.main(["-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=", "tests/test_fuzz.py"],
                plugins=[outcomes])
    seconds = time.perf_counter() - t
    fuzz = sys.modules["tests.test_fuzz"]

    print(f"\nFUZZ_EXAMPLES={examples}: {sum(fuzz.COUNTS.values())} cases in {seconds:.0f} s")
    for name in fuzz.COUNTS:
        if name != "self-test":
            print(f"  {name:20s} {fuzz.COUNTS[name]:6d} cases  {fuzz.FAILED[name]:4d} failed")
    failed = {k: r for k, r in outcomes.reports.items() if r.outcome == "failed"}
    for test, report in outcomes.reports.items():
        print(f"  {report.outcome:7s} {report.duration:6.1f} s  {test}")
    for test, report in failed.items():
        print(f"\n---- {test}\n" + "\n".join(str(report.longrepr).splitlines()[-25:]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
