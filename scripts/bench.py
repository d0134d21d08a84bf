#!/usr/bin/env python3
"""Benchmark generate, fill, check and collect at city scale, against baselines measured in the same run.

    python3 scripts/bench.py             # N = 1,000 synthetic projects
    python3 scripts/bench.py --n 10000   # collect at 10,000 files
    python3 scripts/bench.py --n 100000  # scale: returns made by generate in batches, collect only

Targets (issue 14), printed with each figure: check <= 3 ms of CPU per return (median, real-sized
returns saved by LibreOffice, every template); collect <= 2 x (b); a rerun on an unchanged inbox
<= 0.5 x (b); collect's peak memory <= 300 MiB.

Baselines, on the same files in the same run:
  (a) a plain XlsxWriter script writing the same cell values and formulas, no
      formats, validations or names (for generate);
  (b) python-calamine reading every value of every sheet of the returned files
      (for collect).
Ratios are ours ÷ baseline; both sides run in a single process unless marked
"all cores". Peak memory is the summed RSS of the collect process and its
workers, sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sheettool import spec  # noqa: E402
from sheettool.check import check_file  # noqa: E402
from sheettool.generate import generate, output_path  # noqa: E402
from sheettool.generate.plan import plan_sheet  # noqa: E402
from sheettool.records import Item  # noqa: E402
from sheettool.spec.rates import Rates  # noqa: E402

DEPARTMENTS = {
    "政策イノベーション部": ["情報政策課", "企画経営課", "科学技術戦略課", "広報戦略課"],
    "総務部": ["総務課", "人事課", "財政課", "契約検査課"],
    "市民部": ["市民活動課", "窓口サービス課", "国民健康保険課", "男女共同参画室"],
    "福祉部": ["社会福祉課", "障害福祉課", "高齢福祉課", "地域包括支援課"],
    "こども部": ["こども政策課", "こども育成課", "幼児保育課", "こども未来センター"],
    "保健部": ["健康増進課", "医療政策課", "健康づくり推進課", "保健センター"],
    "生活環境部": ["環境政策課", "環境保全課", "サステナブル都市推進課", "廃棄物対策課"],
    "経済部": ["産業振興課", "農業政策課", "観光推進課", "商工振興課"],
    "都市計画部": ["都市計画課", "学園地区市街地振興室", "開発指導課", "公園・施設課"],
    "建設部": ["道路計画課", "道路整備課", "道路管理課", "建築指導課"],
    "教育局": ["教育総務課", "学務課", "教育指導課", "生涯学習推進課"],
    "消防本部": ["消防総務課", "予防課", "警防課", "情報指令課"],
}
# What a department types into a template for the current year.
FILLED = ("results", "evaluation", "direction", "direction_reason")


DIVISIONS = [(d, c) for d, cs in DEPARTMENTS.items() for c in cs]


def synthetic_records(n: int, seed: int = 7) -> list[dict]:
    """N complete records shaped like the published ones: 5 cost years, 5 indicators, seed-length texts."""
    return list(iter_synthetic_records(n, seed))


def iter_synthetic_records(n: int, seed: int = 7) -> Iterator[dict]:
    """``synthetic_records`` one at a time (tests/test_masterbook_scale.py streams them)."""
    base = json.loads((ROOT / "data" / "tsukuba_R4_records.json").read_text(encoding="utf-8"))
    rng = random.Random(seed)
    all_indicators = [i for r in base for i in r["indicators"]]
    for i in range(n):
        rec = copy.deepcopy(base[i % len(base)])
        rec["project_no"] = f"{i + 1:04d}"
        rec["project_name"] = f"{rec['project_name']}（{i + 1}）"
        rec["department"], rec["division"] = DIVISIONS[i % len(DIVISIONS)]
        scale = rng.uniform(0.3, 3.0)
        for cost in rec["costs"]:
            for key in ("budget", "general_fund", "subsidies_bonds", "other"):
                cost[key] = int(cost[key] * scale)
            cost["settlement"] = cost["general_fund"] + cost["subsidies_bonds"] + cost["other"]
            cost["staff_fte"] = rng.choice([0.5, 1.0, 1.5, 2.0, 2.5, 3.25])
            cost["overtime_hours"] = float(rng.randrange(0, 800))
            cost["personnel_cost"] = None
        rec["indicators"] = [{**copy.deepcopy(rng.choice(all_indicators)), "no": k} for k in range(1, 6)]
        yield rec


def template_record(full: dict) -> dict:
    """Last year's data as the office prefills it: this year's results not yet written."""
    rec = copy.deepcopy(full)
    for key in FILLED:
        rec[key] = None if not isinstance(rec[key], dict) else {k: None for k in rec[key]}
    fy = rec["fiscal_year"]
    for cost in rec["costs"]:
        if cost["year"] == fy:
            cost.update(settlement=None, general_fund=None, subsidies_bonds=None, other=None)
    for ind in rec["indicators"]:
        for v in ind["values"]:
            if v["year"] >= fy:
                v["actual"] = None
    return rec


def ms(seconds: float, n: int) -> str:
    return f"{seconds / max(n, 1) * 1000:8.2f} ms"


class RssSampler(threading.Thread):
    """Peak summed RSS (MiB) of a process and all its descendants."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, False

    def run(self) -> None:
        while not self.done:
            self.peak = max(self.peak, sum(_rss(p) for p in _tree(self.pid)))
            time.sleep(0.02)


def _tree(pid: int) -> list[int]:
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            pids.append(child)
            frontier.append(child)
    return pids


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def baseline_xlsxwriter(plans: list, out: Path) -> float:
    """(a) the same cells, plain: values and formulas only."""
    import xlsxwriter

    cells = [[(c.placed.row, c.placed.col, c.formula, c.value) for c in p.cells] for p in plans]
    start = time.perf_counter()
    for i, rows in enumerate(cells):
        wb = xlsxwriter.Workbook(out / f"{i}.xlsx", {"strings_to_formulas": False, "in_memory": True})
        ws = wb.add_worksheet()
        for row, col, formula, value in rows:
            if formula:
                ws.write_formula(row, col, formula, None, "" if value is None else value)
            elif isinstance(value, str):
                ws.write_string(row, col, value)
            elif value is not None:
                ws.write_number(row, col, value)
        wb.close()
    return time.perf_counter() - start


def baseline_calamine(files: list[Path]) -> float:
    """(b) every value of every sheet, with python-calamine."""
    from python_calamine import CalamineWorkbook

    start = time.perf_counter()
    for f in files:
        wb = CalamineWorkbook.from_path(str(f))
        for name in wb.sheet_names:
            wb.get_sheet_by_name(name).to_python()
    return time.perf_counter() - start


def fill_openpyxl(templates: list[Path], fulls: list[dict], inbox: Path) -> float:
    """Type this year's values into each template's input cells, as a department would."""
    import openpyxl

    lay = spec.load()
    start = time.perf_counter()
    for path, full in zip(templates, fulls, strict=True):
        placement = lay.place(full["fiscal_year"])
        wb = openpyxl.load_workbook(path)
        ws = wb[lay.sheet_name]
        for field_path, placed in placement.fields.items():
            if placed.formula or placed.role != "input":
                continue
            cell = ws[placed.cell]
            if cell.protection.locked:
                continue
            value = lay.cell_type(field_path).to_cell(lay.get(full, field_path))
            if value is not None:
                cell.value = value
                if isinstance(value, str):
                    cell.data_type = "s"
        target = inbox / path.parent.parent.name / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        wb.save(target)
    return time.perf_counter() - start


TEMPLATE_DATA = {"tsukuba": "tsukuba_R4", "fukaya": "fukaya_R6", "koriyama": "koriyama_R7"}
LO_PER_TEMPLATE = 20  # LibreOffice-saved returns per template for check's CPU time
CHECK_TARGET_MS, COLLECT_TARGET, RERUN_TARGET, RSS_TARGET_MIB = 3.0, 2.0, 0.5, 300
SCALE_FROM = 20_000  # from this N: returns made in batches, only collect (and its baseline) measured
BATCH = 5_000


def variants(template: str, fulls: list[dict], n: int) -> list[dict]:
    """``n`` real-sized records of ``template``: つくば's synthetic ones, else the seed's own record(s)
    under other project numbers (their texts and figures as published)."""
    if template == "tsukuba":
        return fulls[:n]
    base = json.loads((ROOT / "data" / f"{TEMPLATE_DATA[template]}_records.json").read_text(encoding="utf-8"))
    out = []
    for i in range(n):
        rec = copy.deepcopy(base[i % len(base)])
        rec["project_no"] = f"{900 + i:04d}"
        rec["project_name"] = f"{rec['project_name']}（{i + 1}）"
        out.append(rec)
    return out


def libreoffice_saved(work: Path, fulls: list[dict]) -> dict[str, list[Path]] | None:
    """Returns of every template opened and saved again by LibreOffice (as a department's are),
    None without LibreOffice."""
    soffice = shutil.which("soffice")
    if soffice is None:
        return None
    out: dict[str, list[Path]] = {}
    profile = work / "lo-profile"
    for template in TEMPLATE_DATA:
        src, dst = work / "lo_src" / template, work / "lo_saved" / template
        records = variants(template, fulls, LO_PER_TEMPLATE)
        generate([Item(f"{i}件目", r) for i, r in enumerate(records, start=1)], src, jobs=os.cpu_count() or 1)
        files = sorted(src.rglob("*.xlsx"))
        dst.mkdir(parents=True)
        proc = subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless",
                               "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(dst),
                               *map(str, files)], capture_output=True, timeout=900)
        saved = sorted(dst.glob("*.xlsx"))
        if proc.returncode != 0 or len(saved) != len(files):
            print(f"LibreOffice failed for {template}: {proc.stderr.decode(errors='replace')[:300]}")
            return None
        out[template] = saved
    return out


def check_cpu(files: list[Path]) -> float:
    """Median CPU seconds of ``check`` per file (the bytes already read, as collect's workers have them)."""
    from sheettool.check import check_bytes

    datas = [(f.read_bytes(), f.name) for f in files]
    for data, name in datas[:3]:  # templates loaded, caches warm
        check_bytes(data, name)
    times = []
    for data, name in datas:
        t = time.process_time()
        check_bytes(data, name)
        times.append(time.process_time() - t)
    return statistics.median(times)


def mark(ok: bool) -> str:
    return "✔" if ok else "✘"


def make_returns_in_batches(n: int, inbox: Path, cores: int) -> float:
    """N returns through generate from complete records, BATCH at a time (memory stays flat)."""
    t = time.perf_counter()
    records = iter_synthetic_records(n)
    done = 0
    while done < n:
        batch = [Item(f"{done + i}件目", r) for i, r in zip(range(1, BATCH + 1), records, strict=False)]
        generate(batch, inbox, jobs=cores)
        done += len(batch)
    return time.perf_counter() - t


def scale(n: int, work: Path, cores: int) -> None:
    inbox = work / "inbox"
    made = make_returns_in_batches(n, inbox, cores)
    returned = sorted(inbox.rglob("*.xlsx"))
    base_b = baseline_calamine(returned)
    coll, peak, code = run_collect(inbox, work / "master.xlsx")
    again, peak_again, _ = run_collect(inbox, work / "master.xlsx")
    print()
    print(f"{'step':38} {'total':>10} {'per workbook':>14}  ratio")
    print(f"{'returns made by generate (all cores)':38} {made:9.2f}s {ms(made, n)}")
    print(f"{'baseline (b) python-calamine':38} {base_b:9.2f}s {ms(base_b, n)}")
    print(f"{'collect (fresh store)':38} {coll:9.2f}s {ms(coll, n)}  {coll / base_b:5.2f} × (b)"
          f"  target ≤ {COLLECT_TARGET:g} × (b) {mark(coll / base_b <= COLLECT_TARGET)}")
    print(f"{'collect again (unchanged inbox)':38} {again:9.2f}s {ms(again, n)}  {again / base_b:5.2f} × (b)"
          f"  target ≤ {RERUN_TARGET:g} × (b) {mark(again / base_b <= RERUN_TARGET)}")
    print(f"{'collect peak RSS (process tree)':38} {peak:8d} MiB  (again: {peak_again} MiB)"
          f"  target ≤ {RSS_TARGET_MIB} MiB {mark(max(peak, peak_again) <= RSS_TARGET_MIB)}")
    print(f"collect exit code {code}")


def run_collect(inbox: Path, master: Path) -> tuple[float, int, int]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sheettool.cli", "collect", str(inbox), "--out", str(master)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    sampler = RssSampler(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    sampler.done = True
    sampler.join()
    if proc.returncode not in (0, 1):
        sys.exit(f"collect failed ({proc.returncode}): {err.decode()}")
    return time.perf_counter() - start, sampler.peak, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="number of projects (default 1000)")
    parser.add_argument("--typed", type=int, default=50,
                        help="how many returned files are typed into templates with openpyxl "
                             "(the rest are generated from the complete records; default 50)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--no-libreoffice", action="store_true",
                        help="measure check on generated returns only (no LibreOffice-saved ones)")
    args = parser.parse_args()
    n = args.n
    work = Path(tempfile.mkdtemp(prefix="sheettool-bench-"))
    cores = os.cpu_count() or 1
    print(f"sheettool benchmark: N={n:,}, {cores} cores, Python {sys.version.split()[0]}, work={work}")
    if n >= SCALE_FROM:
        scale(n, work, cores)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return
    fulls = synthetic_records(n)
    templates = [template_record(r) for r in fulls]
    lay = spec.load()
    rates = Rates.bundled(lay)

    plans = [plan_sheet(r, lay, rates) for r in templates]
    (work / "baseline_a").mkdir()
    base_a = baseline_xlsxwriter(plans, work / "baseline_a")
    del plans
    items = [Item(f"{i}件目", r) for i, r in enumerate(templates, start=1)]
    t = time.perf_counter()
    generate(items, work / "gen1", jobs=1)
    gen1 = time.perf_counter() - t
    t = time.perf_counter()
    result = generate(items, work / "templates", jobs=cores)
    gen_all = time.perf_counter() - t
    assert len(result.written) == n, result.findings[:3]
    template_paths = [output_path(work / "templates", r) for r in templates]

    # Returned files: most are generated from the complete records (what a filled template
    # holds, with cached values as Excel saves them); some are typed into the templates with
    # openpyxl, as a department's script would, and replace their generated twins.
    inbox = work / "inbox"
    t = time.perf_counter()
    generate([Item(f"{i}件目", r) for i, r in enumerate(fulls, start=1)], inbox, jobs=cores)
    regen = time.perf_counter() - t
    typed = min(args.typed, n)
    fill = fill_openpyxl(template_paths[:typed], fulls[:typed], inbox)
    returned = sorted(inbox.rglob("*.xlsx"))

    sample = returned[: min(50, len(returned))]
    times = []
    for f in sample:
        t = time.perf_counter()
        check_file(f)
        times.append(time.perf_counter() - t)
    check_one = statistics.median(times)

    check_cpu_generated = check_cpu(sample)
    saved = None if args.no_libreoffice else libreoffice_saved(work, fulls)

    base_b = baseline_calamine(returned)
    coll, peak, code = run_collect(inbox, work / "master.xlsx")
    coll_again, peak_again, _ = run_collect(inbox, work / "master.xlsx")

    print()
    print(f"{'step':38} {'total':>10} {'per workbook':>14}  ratio")
    print(f"{'baseline (a) plain XlsxWriter':38} {base_a:9.2f}s {ms(base_a, n)}")
    print(f"{'generate, 1 process':38} {gen1:9.2f}s {ms(gen1, n)}  {gen1 / base_a:5.2f} × (a)")
    print(f"{f'generate, all cores ({cores})':38} {gen_all:9.2f}s {ms(gen_all, n)}  {gen_all / base_a:5.2f} × (a)")
    print(f"{'fill: typed with openpyxl (' + str(typed) + ' files)':38} {fill:9.2f}s {ms(fill, typed)}")
    print(f"{'fill: generated from complete records':38} {regen:9.2f}s {ms(regen, n)}")
    print(f"{'check of one file (median of ' + str(len(sample)) + ')':38} {'':10} {ms(check_one, 1)}"
          "  (wall, file read included)")
    print(f"{'check CPU, generated returns':38} {'':10} {ms(check_cpu_generated, 1)}")
    for template, files in (saved or {}).items():
        cpu = check_cpu(files)
        print(f"{'check CPU, LibreOffice-saved ' + template + ' (' + str(len(files)) + ')':38} {'':10} {ms(cpu, 1)}"
              f"  target ≤ {CHECK_TARGET_MS:g} ms {mark(cpu * 1000 <= CHECK_TARGET_MS)}")
    if saved is None:
        print(f"{'check CPU, LibreOffice-saved':38} {'':10} (not measured: no LibreOffice)")
    print(f"{'baseline (b) python-calamine':38} {base_b:9.2f}s {ms(base_b, n)}")
    print(f"{'collect (fresh store)':38} {coll:9.2f}s {ms(coll, n)}  {coll / base_b:5.2f} × (b)"
          f"  target ≤ {COLLECT_TARGET:g} × (b) {mark(coll / base_b <= COLLECT_TARGET)}")
    print(f"{'collect again (unchanged inbox)':38} {coll_again:9.2f}s {ms(coll_again, n)}  "
          f"{coll_again / base_b:5.2f} × (b)  target ≤ {RERUN_TARGET:g} × (b) {mark(coll_again / base_b <= RERUN_TARGET)}")
    print(f"{'collect peak RSS (process tree)':38} {peak:8d} MiB  (again: {peak_again} MiB)"
          f"  target ≤ {RSS_TARGET_MIB} MiB {mark(max(peak, peak_again) <= RSS_TARGET_MIB)}")
    print(f"collect exit code {code} (1 = some findings, expected with synthetic data)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
