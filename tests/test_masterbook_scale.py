"""The master book's memory does not grow with the number of projects (sheettool/masterbook.py).

Each size is written in a fresh process, the way ``collect`` does it: the
current submissions come one at a time from a generator (as from
``Ledger.iter_current()``) and the history holds no records (as
``Ledger.history_info()``), so what the process holds is the writer's own. Its
peak resident set (VmHWM) is compared between 200 and 2,000 synthetic
projects. No timing is asserted: ``scripts/bench.py`` measures speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import json, sys
from pathlib import Path

ROOT = Path(sys.argv[1])
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from bench import DIVISIONS, iter_synthetic_records
from sheettool import findings
from sheettool.collect import master as masterbook
from sheettool.collect.ledger import ResultInfo, SubmissionInfo
from sheettool.collect.submission import ACCEPTED, NEEDS_FIX, CheckResult, Submission


def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024  # MiB
    raise LookupError(field)


n, out = int(sys.argv[2]), Path(sys.argv[3])
records = iter_synthetic_records(n)


def found(i):
    if i % 10:
        return []
    return [findings.Finding("V301", "error", f"予算額が入力されていません（{i}）。", "マネジメントシート", "E21",
                             "costs.2022.budget")]


def sha(i):
    return f"{i:064x}"


def path(i):
    dept, div = DIVISIONS[i % len(DIVISIONS)]
    return f"{dept}/{div}/{i + 1:05d}.xlsx"


def when(i):
    return f"2023-05-{1 + i // 1440 % 28:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00+09:00"


def current():
    for i in range(n):
        yield Submission(sha(i), path(i), when(i), "2023-04-30T18:00:00+09:00",
                         CheckResult(f"{i + 1:05d}.xlsx", next(records), found(i)), current=True)


history = [SubmissionInfo(sha(i), path(i), when(i), "2023-04-30T18:00:00+09:00", f"{i + 1:05d}",
                          ResultInfo(path(i), NEEDS_FIX if found(i) else ACCEPTED, found(i), True, True), True)
           for i in range(n)]
before = status("VmRSS")
masterbook.write_outputs(out / "master.xlsx", out / "csv", current(), None, history, 2022)
lines = (out / "csv" / "一覧_2022.csv").read_bytes().count(b"\r\n")
print(json.dumps({"before": before, "peak": status("VmHWM"), "rows": lines - 1,
                  "left": sorted(p.name for p in out.iterdir())}))
"""


def write_in_a_fresh_process(n: int, out: Path) -> dict:
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(n), str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_peak_memory_is_flat_in_the_number_of_projects(tmp_path):
    small = write_in_a_fresh_process(200, tmp_path / "small")
    large = write_in_a_fresh_process(2_000, tmp_path / "large")
    assert (small["rows"], large["rows"]) == (200, 2_000)
    assert small["left"] == large["left"] == ["csv", "master.xlsx"]  # no temp files left behind
    detail = f"peak {small['peak']} → {large['peak']} MiB (before writing: {small['before']} → {large['before']})"
    assert large["peak"] < 1.5 * small["peak"] + 30, detail
