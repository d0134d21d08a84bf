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
import copy, json, random, sys
from pathlib import Path

ROOT = Path(sys.argv[1])
sys.path.insert(0, str(ROOT))
from sheettool import findings, masterbook
from sheettool.ledger import ResultInfo, SubmissionInfo
from sheettool.submission import ACCEPTED, NEEDS_FIX, CheckResult, Submission


def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024  # MiB
    raise LookupError(field)


n, out = int(sys.argv[2]), Path(sys.argv[3])
base = json.loads((ROOT / "data" / "tsukuba_R4_records.json").read_text(encoding="utf-8"))
departments = [("政策イノベーション部", "情報政策課"), ("総務部", "財政課"), ("市民部", "窓口サービス課"),
               ("福祉部", "高齢福祉課"), ("教育局", "学務課")]
indicators = [i for r in base for i in r["indicators"]]
rng = random.Random(7)


def record(i):
    # Like scripts/bench.py's synthetic_records, one at a time.
    rec = copy.deepcopy(base[i % len(base)])
    rec["project_no"] = f"{i + 1:05d}"
    rec["project_name"] = f"{rec['project_name']}（{i + 1}）"
    rec["department"], rec["division"] = departments[i % len(departments)]
    scale = rng.uniform(0.3, 3.0)
    for cost in rec["costs"]:
        for key in ("budget", "general_fund", "subsidies_bonds", "other"):
            cost[key] = int((cost[key] or 0) * scale)
        cost["settlement"] = cost["general_fund"] + cost["subsidies_bonds"] + cost["other"]
    rec["indicators"] = [{**copy.deepcopy(rng.choice(indicators)), "no": k} for k in range(1, 6)]
    return rec


def found(i):
    if i % 10:
        return []
    return [findings.Finding("V301", "error", f"予算額が入力されていません（{i}）。", "マネジメントシート", "E21",
                             "costs.2022.budget")]


def sha(i):
    return f"{i:064x}"


def path(i):
    dept, div = departments[i % len(departments)]
    return f"{dept}/{div}/{i + 1:05d}.xlsx"


def when(i):
    return f"2023-05-{1 + i // 1440 % 28:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00+09:00"


def current():
    for i in range(n):
        yield Submission(sha(i), path(i), when(i), "2023-04-30T18:00:00+09:00",
                         CheckResult(f"{i + 1:05d}.xlsx", record(i), found(i)), current=True)


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
