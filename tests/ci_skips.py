"""In CI, a test skipped for a missing tool or harness fails instead.

A silent skip in CI would hide that nothing was checked (poppler-utils, for one, went
missing that way). Outside CI a skip stays a skip. conftest.py loads this plugin.

Fail-closed: in CI every skip fails except those in ALLOWED_IN_CI, which are not about the
machine - opt-in measurements and data kept outside the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

ALLOWED_IN_CI = (
    "set SHEETTOOL_BENCH=1",  # tests/test_stamp.py: an opt-in benchmark
    "shared seeds are not checked out",  # tests/test_importtext.py: the originals live outside the repo
    "the OOXML validator is not checked out",  # tests/test_hostile.py: the workplace's tool, outside the repo
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail") or not in_ci():
        return
    reason = _reason(report)
    if reason.startswith(ALLOWED_IN_CI):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped in CI, where every tool the tests need must be installed "
                       f"(scripts/test.sh installs them): {reason}")
