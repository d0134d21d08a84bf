"""The command line's own messages: Japanese help and usage, and ordinary mistakes as exit 2."""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, SEED_RECORDS, generate_seed_templates

from sheettool.cli import _os_error_message, main

COMMANDS = ("generate", "check", "collect", "rollforward", "import-text")
# argparse's own English, which must not reach a user (option names like --help aside).
ENGLISH = re.compile(r"\b(usage|options?|optional|positional|arguments?|required|invalid|errors?|"
                     r"expected|show|message|choose|choices|unrecognized|ambiguous|exit|"
                     r"subcommands?|program|allowed|ignored|explicit|value|type)\b", re.I)


def run(*args: object) -> tuple[int, str, str]:
    """``main(args)`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def english_words(text: str) -> list[str]:
    text = re.sub(r"--?[a-z][\w-]*", "", text)  # option names are what users type
    return ENGLISH.findall(text)


def usage_error(rc: int, err: str) -> str:
    """The one error line of a usage error, after checking what every usage error shares."""
    assert rc == 2
    assert "Traceback" not in err and "内部エラー" not in err
    lines = [line for line in err.splitlines() if line.startswith("エラー: ")]
    assert len(lines) == 1, err
    return lines[0]


# --------------------------------------------------------------------------- help and usage


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_is_japanese(command: str | None) -> None:
    rc, out, err = run(*([command] if command else []), "--help")
    assert (rc, err) == (0, "")
    assert out.startswith("使い方: sheettool")
    assert "オプション:" in out and "このヘルプを表示して終了する" in out
    assert english_words(out) == [], out


def test_version() -> None:
    assert run("--version")[:2] == (0, "sheettool 0.2.0\n")


@pytest.mark.parametrize(("args", "needle"), [
    ([], "次の指定がありません: {generate,"),
    (["generate"], "次の指定がありません: RECORDS, --out"),
    (["generate", "r.json"], "次の指定がありません: --out"),
    (["frobnicate"], "'frobnicate' はありません"),
    (["check", "a.xlsx", "b.xlsx"], "知らない指定があります: b.xlsx"),
    (["check", "a.xlsx", "--colour"], "知らない指定があります: --colour"),
    (["generate", "r.json", "--out"], "--out: 値を1つ指定してください"),
    (["generate", "r.json", "--out", "o", "--jobs", "many"], "--jobs: 整数を指定してください"),
    (["check", "a.xlsx", "--json=yes"], "--json: このオプションには値（'yes'）を付けられません"),
    (["collect", "inbox", "--out", "m.xlsx", "--j", "2"], "--j ではどのオプションか決まりません"),
])
def test_argument_errors_are_japanese(args: list[str], needle: str) -> None:
    rc, out, err = run(*args)
    line = usage_error(rc, err)
    assert out == ""
    assert needle in line
    assert err.startswith("使い方: sheettool")
    assert english_words(err) == [], err


def test_argparse_elsewhere_keeps_its_language() -> None:
    run("generate", "--help")
    run("generate")
    assert argparse._("usage: ") == "usage: "  # type: ignore[attr-defined]
    assert "usage:" in argparse.ArgumentParser(prog="other").format_usage()


# --------------------------------------------------------------------------- files and folders


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with the sample records, a folder and a plain file in it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "records.json").write_bytes(SEED_RECORDS.read_bytes())
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("テキスト\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("args", "needle"), [
    (["generate", "folder", "--out", "o"], "folder はフォルダです。ファイルを指定してください"),
    (["generate", "records.json", "--out", "file.txt"], "file.txt は既にあるファイルです"),
    (["generate", "records.json", "--out", "file.txt/o"], "file.txt はフォルダではなくファイルです"),
    (["generate", "records.json", "--out", "o", "--rates", "folder"], "単価ファイル folder はフォルダです"),
    (["check", "folder"], "提出されたブック folder はフォルダです"),
    (["check", "nothing.xlsx"], "ファイルが見つかりません: nothing.xlsx（提出されたブック）"),
    (["collect", "file.txt", "--out", "m.xlsx"], "受信フォルダ file.txt はファイルです"),
    (["collect", "nothing", "--out", "m.xlsx"], "受信フォルダが見つかりません"),
    (["collect", "folder", "--out", "folder"], "folder は既にあるフォルダです。ファイル名を指定してください"),
    (["collect", "folder", "--out", "m.csv"], "マスターブック（--out）は .xlsx で終わるファイル名にしてください"),
    (["collect", "folder", "--out", "no/such/m.xlsx"], "置き場所のフォルダ no/such がありません"),
    (["collect", "folder", "--out", "file.txt/m.xlsx"], "file.txt はフォルダではなくファイルです"),
    (["collect", "folder", "--out", "m.xlsx", "--json", "folder"], "（--json） folder は既にあるフォルダです"),
    (["collect", "folder", "--out", "m.xlsx", "--json", "no/r.jsonl"], "置き場所のフォルダ no がありません"),
    (["collect", "folder", "--out", "m.xlsx", "--store", "file.txt"], "file.txt は既にあるファイルです"),
    (["collect", "folder", "--out", "m.xlsx", "--csv", "file.txt"], "file.txt は既にあるファイルです"),
    (["collect", "folder", "--out", "m.xlsx", "--expected", "folder"], "folder はフォルダです"),
    (["rollforward", "folder", "--out", "o"], "繰越元の記録のファイル folder はフォルダです"),
    (["rollforward", "records.json", "--out", "file.txt"], "file.txt は既にあるファイルです"),
    (["rollforward", "records.json", "--records-only", "folder"], "folder は既にあるフォルダです"),
    (["rollforward", "records.json", "--records-only", "a/b/r.json"], "置き場所のフォルダ a/b がありません"),
    (["rollforward", "records.json", "--records-only", "r.json", "--mapping", "folder"],
     "対応表ファイル folder はフォルダです"),
    (["import-text", "folder", "--out", "r.json"], "公表シートのテキスト folder はフォルダです"),
    (["import-text", "file.txt", "--out", "folder"], "folder は既にあるフォルダです"),
    (["import-text", "file.txt", "--out", "x/y/r.json"], "置き場所のフォルダ x/y がありません"),
])
def test_wrong_kind_of_path_is_a_usage_error(here: Path, args: list[str], needle: str) -> None:
    before = sorted(p.relative_to(here) for p in here.rglob("*"))
    rc, out, err = run(*args)
    assert needle in usage_error(rc, err)
    assert english_words(err) == [], err
    assert sorted(p.relative_to(here) for p in here.rglob("*")) == before  # nothing made up


def test_check_annotate_onto_a_folder(here: Path) -> None:
    book = next(generate_seed_templates(here).rglob("*.xlsx"))
    rc, _, err = run("check", book, "--annotate", "folder")
    assert "指摘付きの写し（--annotate） folder は既にあるフォルダです" in usage_error(rc, err)
    rc, _, err = run("check", book, "--annotate", "none/a.xlsx")
    assert "置き場所のフォルダ none がありません" in usage_error(rc, err)
    assert not (here / "none").exists()


def test_generate_may_create_its_output_folders(here: Path) -> None:
    rc, out, err = run("generate", "records.json", "--out", "a/b/c")
    assert (rc, err) == (0, "")
    assert len(list((here / "a" / "b" / "c").rglob("*.xlsx"))) == 6


def test_collect_refuses_a_csv_name_before_writing_anything(here: Path) -> None:
    rc, _, err = run("collect", "folder", "--out", "m.csv")
    assert "m.csv" in usage_error(rc, err)
    assert not [p for p in here.iterdir() if p.name.startswith("m")]  # no m.csv, no m.sheettool


# --------------------------------------------------------------------------- records files


def test_text_that_is_not_json_is_one_clear_error(here: Path) -> None:
    (here / "notes.txt").write_bytes((ROOT / "README.md").read_bytes())  # 100+ lines of text
    rc, out, err = run("generate", "notes.txt", "--out", "o")
    line = usage_error(rc, err)
    assert "notes.txt はJSONとして読めません（1行目 1文字目: 値がありません" in line
    assert "JSON配列、JSON Lines（1行に1件）、またはマスターブック（.xlsx）" in line
    assert len(err.splitlines()) == 1 and out == ""
    assert not (here / "o").exists()


def test_a_pretty_printed_record_is_told_to_become_an_array(here: Path) -> None:
    record = json.loads(SEED_RECORDS.read_text(encoding="utf-8"))[0]
    (here / "one.json").write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    rc, _, err = run("generate", "one.json", "--out", "o")
    assert "全体を [ ] で囲んだ JSON配列にしてください" in usage_error(rc, err)


@pytest.mark.parametrize("command", [["generate", "--out", "o"], ["rollforward", "--records-only", "r.json"]])
def test_an_empty_records_array_is_an_error(here: Path, command: list[str]) -> None:
    (here / "empty.json").write_text("[]\n", encoding="utf-8")
    rc, out, err = run(command[0], "empty.json", *command[1:])
    assert "empty.json に記録が1件もありません（空の配列です）" in usage_error(rc, err)
    assert out == ""


def test_empty_expected_records_are_an_error(here: Path) -> None:
    (here / "empty.json").write_text(" [ ] ", encoding="utf-8")
    rc, _, err = run("collect", "folder", "--out", "m.xlsx", "--expected", "empty.json")
    assert "記録が1件もありません" in usage_error(rc, err)


@pytest.mark.parametrize(("text", "where", "problem"), [
    ('[\n  {"project_no": "088"\n   "project_name": "x"}\n]', "3行目 4文字目", "区切りの「,」がありません"),
    ('[{"a": 1,}]', "1行目 10文字目", "項目名がありません"),
    ('[{"a" 1}]', "1行目 7文字目", "項目名の後に「:」がありません"),
    ('[1, 2,]', "1行目 7文字目", "値がありません"),
    ("[{'a': 1}]", "1行目 3文字目", "項目名がありません"),
    ('[{"a": "abc}]', "1行目 8文字目", "文字列が閉じられていません"),
    ('[{"a": "C:\\data"}]', "1行目 11文字目", "文字列の中の \\ の使い方が正しくありません"),
    ('[{"a": 1}] [{"b": 2}]', "1行目 12文字目", "JSON の終わりの後に続きがあります"),
])
def test_json_syntax_errors_are_explained_in_japanese(here: Path, text: str, where: str,
                                                       problem: str) -> None:
    (here / "bad.json").write_text(text, encoding="utf-8")
    rc, _, err = run("generate", "bad.json", "--out", "o")
    line = usage_error(rc, err)
    assert f"bad.json のJSONが不正です（{where}: {problem}" in line
    assert not re.search(r"[A-Za-z]{4,}", line.replace("bad.json", "").replace("JSON", "")), line


def test_json_syntax_errors_in_rates_and_mapping(here: Path) -> None:
    (here / "bad.json").write_text('{"2022": {"salary_per_fte": 1 "overtime_per_hour": 2}}',
                                   encoding="utf-8")
    rc, _, err = run("generate", "records.json", "--out", "o", "--rates", "bad.json")
    assert "単価ファイル bad.json のJSONが不正です（1行目 31文字目: 区切りの「,」がありません）" in usage_error(rc, err)
    rc, _, err = run("rollforward", "records.json", "--records-only", "r.json", "--mapping", "bad.json")
    assert "対応表ファイル bad.json のJSONが不正です（1行目 31文字目" in usage_error(rc, err)


def test_a_broken_json_lines_entry_is_told_in_japanese(here: Path) -> None:
    records = json.loads(SEED_RECORDS.read_text(encoding="utf-8"))
    lines = [json.dumps(records[0], ensure_ascii=False), '{"project_no": 88,', "",
             json.dumps(records[1], ensure_ascii=False)]
    (here / "r.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc, out, err = run("generate", "r.jsonl", "--out", "o")
    assert rc == 1  # the others are still written
    assert "2行目" in err and "JSONとして読めません（19文字目: 項目名がありません" in err
    assert "Expecting" not in err
    assert "2件のテンプレートを作成しました" in out


def test_os_errors_are_told_in_japanese() -> None:
    denied = PermissionError(errno.EACCES, "Permission denied", "/srv/master.xlsx")
    assert _os_error_message(denied) == "/srv/master.xlsx: 権限がありません。"
    odd = OSError(errno.EIO, "Input/output error", "x.xlsx")
    assert _os_error_message(odd) == "x.xlsx: 読み書きできません（EIO）。"


# --------------------------------------------------------------------------- a real process


@pytest.mark.parametrize("args", [
    ["generate", "README.md", "--out", "{tmp}/o"],
    ["check", "{tmp}"],
    ["collect", "README.md", "--out", "{tmp}/m.xlsx"],
    ["collect", "{tmp}", "--out", "{tmp}/m.csv"],
    ["rollforward", "{tmp}", "--out", "{tmp}/o"],
    ["generate", "--jobs", "x"],
])
def test_no_traceback_from_a_real_process(tmp_path: Path, args: list[str]) -> None:
    argv = [a.format(tmp=tmp_path) for a in args]
    done = subprocess.run([sys.executable, "-m", "sheettool.cli", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "内部エラー" not in done.stderr
    assert "エラー: " in done.stderr
    assert english_words(done.stderr.replace(str(tmp_path), "")) == [], done.stderr
