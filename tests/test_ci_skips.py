"""ci_skips: in CI a skip for a missing tool fails; opt-in and outside-data skips stay skips."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SAMPLE = '''
import os
import shutil

import pytest


@pytest.fixture
def tool():
    if shutil.which("no-such-tool-here") is None:
        pytest.skip("no-such-tool-here not installed")


def test_needs_a_tool(tool):
    pass


@pytest.mark.skipif(True, reason="LibreOffice not installed")
def test_skipif_for_a_tool():
    pass


def test_inline_skip():
    pytest.skip("pdfinfo (poppler-utils) not installed")


@pytest.mark.skipif(not os.environ.get("SHEETTOOL_BENCH"), reason="set SHEETTOOL_BENCH=1 to measure")
def test_opt_in_benchmark():
    pass


def test_seeds_outside_the_repository():
    pytest.skip("shared seeds are not checked out next to this repository")


@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False


def test_plain():
    pass
'''


def _outcomes(tmp_path: Path, ci: str | None) -> dict[str, int]:
    (tmp_path / "test_sample.py").write_text(SAMPLE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "SHEETTOOL_BENCH")}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "ci_skips", "-p", "no:cacheprovider",
                           "-q", "-rA", "test_sample.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    summary = done.stdout.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}


def test_skips_stay_skips_outside_ci(tmp_path: Path) -> None:
    assert _outcomes(tmp_path, None) == {"passed": 1, "skipped": 5, "xfailed": 1}
    assert _outcomes(tmp_path, "false") == {"passed": 1, "skipped": 5, "xfailed": 1}


@pytest.mark.parametrize("ci", ["1", "true"])
def test_a_missing_tool_fails_in_ci(tmp_path: Path, ci: str) -> None:
    # the fixture and skipif skips happen in setup (reported as errors), the inline one in the call
    assert _outcomes(tmp_path, ci) == {"failed": 1, "passed": 1, "skipped": 2, "xfailed": 1,
                                       "errors": 2}
