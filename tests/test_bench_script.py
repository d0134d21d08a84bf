"""scripts/bench.py runs end to end at a tiny N (speed itself is measured by the script, not here)."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers import ROOT


def test_bench_runs_and_reports_every_figure():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--n", "12", "--typed", "2"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for label in ("baseline (a) plain XlsxWriter", "generate, 1 process", "baseline (b) python-calamine",
                  "collect (fresh store)", "collect peak RSS"):
        assert label in out
    assert re.search(r"generate, 1 process .* × \(a\)", out)
    assert re.search(r"collect \(fresh store\) .* × \(b\)", out)
