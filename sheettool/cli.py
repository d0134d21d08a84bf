"""Command line: ``sheettool generate | check | collect | rollforward | import-text``.

Exit codes (CONTRACT §4): 0 success, 1 finished but the input has errors,
2 bad usage or a file that cannot be read. Bad input never shows a traceback.
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from . import __version__, jsontext
from .fileio import OutputError
from .findings import Finding
from .messages import visible
from .outputs import OutputConflict, Place, file_ids, guard
from .signing import KeyFileError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _say(*parts: object, **kwargs: Any) -> None:
    """``print`` for the terminal: file names and messages from returned files may hold escape sequences."""
    print(*(visible(str(p)) for p in parts), **kwargs)


class UsageError(Exception):
    """Bad usage or an unreadable input; printed as is, exit code 2."""


# --------------------------------------------------------------------------- argparse in Japanese

# argparse's own words (usage line, group titles, -h, parse errors), keyed by the English text
# argparse passes to its gettext functions. Missing keys stay English: tests/test_cli.py looks
# for leftovers in every --help and the common errors.
_ARGPARSE_JA = {
    "usage: ": "使い方: ",
    "positional arguments": "引数",
    "options": "オプション",
    "optional arguments": "オプション",
    "subcommands": "コマンド",
    "show this help message and exit": "このヘルプを表示して終了する",
    "argument %(argument_name)s: %(message)s": "%(argument_name)s: %(message)s",
    "the following arguments are required: %s": "次の指定がありません: %s",
    "unrecognized arguments: %s": "知らない指定があります: %s",
    "expected one argument": "値を1つ指定してください",
    "expected at most one argument": "値は1つまでです",
    "expected at least one argument": "値を1つ以上指定してください",
    "expected %s argument": "値を%s個指定してください",
    "expected %s arguments": "値を%s個指定してください",
    "invalid %(type)s value: %(value)r": "%(value)r は使えない値です",
    "invalid choice: %(value)r (choose from %(choices)s)":
        "%(value)r はありません（指定できるもの: %(choices)s）",
    "unknown parser %(parser_name)r (choices: %(choices)s)":
        "%(parser_name)r というコマンドはありません（コマンド: %(choices)s）",
    "ambiguous option: %(option)s could match %(matches)s":
        "%(option)s ではどのオプションか決まりません（候補: %(matches)s）",
    "not allowed with argument %s": "%s と一緒には指定できません",
    "one of the arguments %s is required": "%s のどれかを指定してください",
    "ignored explicit argument %r": "このオプションには値（%r）を付けられません",
    "unexpected option string: %s": "ここでは使えないオプションです: %s",
    "%(prog)s: error: %(message)s\n": "%(prog)s: エラー: %(message)s\n",
}

_T = TypeVar("_T", bound=Callable[..., Any])


@contextmanager
def _argparse_in_japanese() -> Iterator[None]:
    """argparse's module-level ``_`` / ``ngettext`` look up _ARGPARSE_JA while the block runs.

    Swapped only around our own parsers' calls, so argparse elsewhere in the process (pytest
    running main() in-process) keeps its own language. Nested use restores what it found.
    """
    saved = {name: getattr(argparse, name) for name in ("_", "ngettext") if hasattr(argparse, name)}

    def gettext(text: str) -> str:
        return _ARGPARSE_JA.get(text, text)

    def ngettext(singular: str, plural: str, n: int) -> str:
        return gettext(singular if n == 1 else plural)

    argparse._ = gettext  # type: ignore[attr-defined]
    argparse.ngettext = ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(argparse, name, value)


def _japanese(method: _T) -> _T:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _argparse_in_japanese():
            return method(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that speaks Japanese and reports errors as UsageError (exit 2)."""

    __init__ = _japanese(argparse.ArgumentParser.__init__)
    parse_known_args = _japanese(argparse.ArgumentParser.parse_known_args)
    parse_args = _japanese(argparse.ArgumentParser.parse_args)
    format_usage = _japanese(argparse.ArgumentParser.format_usage)
    format_help = _japanese(argparse.ArgumentParser.format_help)
    add_subparsers = _japanese(argparse.ArgumentParser.add_subparsers)

    def error(self, message: str) -> None:  # argparse would print "error:" and exit 2
        self.print_usage(sys.stderr)
        raise UsageError(f"コマンドの指定が正しくありません: {message}。"
                         f"説明は {self.prog} --help で表示されます。")


def _count(text: str) -> int:
    """--jobs: a whole number (argparse's own message would name the Python type)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"整数を指定してください（{text!r} は整数ではありません）") from None


# --------------------------------------------------------------------------- files named on the command line


def _input_file(path: str | Path, what: str) -> Path:
    """An existing file to read; a folder or a missing path is a usage error."""
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"{what} {file} はフォルダです。ファイルを指定してください。")
    if not file.exists():
        raise UsageError(f"ファイルが見つかりません: {file}（{what}）")
    return file


def _input_folder(path: str | Path, what: str) -> Path:
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{what} {folder} はファイルです。フォルダを指定してください。")
    if not folder.exists():
        raise UsageError(f"{what}が見つかりません: {folder}")
    return folder


def _output_file(path: str | Path, what: str, suffix: str | None = None) -> Path:
    """A file to write: not a folder, in a folder that exists (deep trees are not made up)."""
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"{what} {file} は既にあるフォルダです。ファイル名を指定してください。")
    if suffix and file.suffix.lower() != suffix:
        raise UsageError(f"{what}は {suffix} で終わるファイル名にしてください: {file}")
    parent = file.parent
    if not parent.is_dir():
        if parent.exists():
            raise UsageError(f"{what} {file} の置き場所 {parent} はフォルダではなくファイルです。")
        raise UsageError(f"{what} {file} の置き場所のフォルダ {parent} がありません。"
                         "先にフォルダを作るか、既にあるフォルダを指定してください。")
    return file


def _output_folder(path: str | Path, what: str) -> Path:
    """A folder to write into; it (and missing parents) may be created, but not over a file."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{what} {folder} は既にあるファイルです。フォルダを指定してください。")
    for parent in folder.parents:  # the nearest existing ancestor must be a folder too
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{what} {folder} の途中の {parent} はフォルダではなくファイルです。")
            break
    return folder


# --------------------------------------------------------------------------- JSON errors in Japanese

# json's messages (json/decoder.py and its C scanner), by how they start.
_JSON_PROBLEMS = (
    ("Expecting value", "値がありません（書き忘れ、閉じかっこの前の余分な「,」、"
                        "または JSON では使えない書き方です）"),
    ("Expecting ',' delimiter", "区切りの「,」がありません"),
    ("Expecting ':' delimiter", "項目名の後に「:」がありません"),
    ("Expecting property name enclosed in double quotes",
     "項目名がありません（項目名は \"…\" で囲みます。閉じかっこの前の余分な「,」かもしれません）"),
    ("Illegal trailing comma", "閉じかっこの前に余分な「,」があります"),
    ("Unterminated string", "文字列が閉じられていません（終わりの \" がありません）"),
    ("Invalid control character", "文字列の中に改行やタブがあります（\\n や \\t と書きます）"),
    ("Invalid \\uXXXX escape", "文字列の中の \\u の後は16進数4桁にしてください"),
    ("Invalid \\escape", "文字列の中の \\ の使い方が正しくありません（\\ そのものは \\\\ と書きます）"),
    ("Extra data", "JSON の終わりの後に続きがあります（全体を [ ] で囲んだ1つの配列にしてください）"),
    ("Unexpected UTF-8 BOM", "先頭に BOM があります"),
)


def _json_words(error: json.JSONDecodeError) -> str:
    """What is wrong, in Japanese words ("区切りの「,」がありません")."""
    return next((ja for en, ja in _JSON_PROBLEMS if error.msg.startswith(en)),
                "JSON として正しくない書き方です")


def _json_problem(error: json.JSONDecodeError) -> str:
    """Where and what: "3行目 12文字目: 区切りの「,」がありません"."""
    return f"{error.lineno}行目 {error.colno}文字目: {_json_words(error)}"


def _json_text_error(path: Path) -> str | None:
    """Why the JSON document ``path`` does not parse (Japanese), or None when it does."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        if not text.strip():
            return None  # empty: the caller's own message says so
        jsontext.loads(text)
    except json.JSONDecodeError as e:
        return _json_problem(e)
    except jsontext.JSONTextError as e:  # NaN, or nested 100,000 deep
        return str(e)
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _load_records(path: str | Path, what: str = "記録") -> list:
    """records.load for the command line: one clear usage error when nothing in it is a record."""
    from . import records, sources

    file = _input_file(path, f"{what}のファイル")
    book = file.suffix.lower() in (".xlsx", ".xlsm")
    try:
        items = sources.load_records(file)
    except records.RecordsError as e:
        problem = None if book else _json_text_error(file)
        raise UsageError(f"{file} のJSONが不正です（{problem}）。" if problem else str(e)) from None
    if not items:
        raise UsageError(f"{file} に記録が1件もありません{'' if book else '（空の配列です）'}。"
                         "記録を1件以上入れてください。")
    broken = any(item.error for item in items)
    if broken and not any(isinstance(item.data, dict) for item in items):
        # Read as JSON Lines, and no line was a record: not JSON Lines at all. One message
        # about the whole text, not one per line.
        problem = _json_text_error(file)
        if problem is None:  # one JSON document over several lines, e.g. a pretty-printed record
            raise UsageError(f"{file} は1行に1件の JSON Lines ではありません。"
                             "複数行に書いた記録は、全体を [ ] で囲んだ JSON配列にしてください。")
        raise UsageError(f"{file} はJSONとして読めません（{problem}）。記録は JSON配列、"
                         "JSON Lines（1行に1件）、またはマスターブック（.xlsx）で指定してください。")
    if broken:
        _explain_broken_lines(file, items)
    return items


def _explain_broken_lines(file: Path, items: list) -> None:
    """Rewrites the error of each JSON Lines entry that failed in Japanese (records.load keeps
    json's English message)."""
    lines = file.read_text(encoding="utf-8-sig").splitlines()
    for item in items:
        lineno = item.where.removesuffix("行目")
        if item.error is None or not lineno.isdigit() or not 0 < int(lineno) <= len(lines):
            continue
        try:
            jsontext.loads(lines[int(lineno) - 1])
        except json.JSONDecodeError as e:
            item.error = f"JSONとして読めません（{e.colno}文字目: {_json_words(e)}）"
        except jsontext.JSONTextError as e:
            item.error = f"JSONとして読めません（{e}）"


_OS_ERRORS = {
    errno.EACCES: "権限がありません",
    errno.EPERM: "権限がありません",
    errno.ENOENT: "見つかりません",
    errno.EISDIR: "フォルダです",
    errno.ENOTDIR: "途中にフォルダではないものがあります",
    errno.ENOSPC: "ディスクの空きがありません",
    errno.EROFS: "読み取り専用の場所です",
    errno.ENAMETOOLONG: "名前が長すぎます",
    errno.EEXIST: "既にあります",
}


def _os_error_message(e: OSError) -> str:
    code = errno.errorcode.get(e.errno or 0, type(e).__name__)  # a name, not English prose
    what = _OS_ERRORS.get(e.errno or 0, f"読み書きできません（{code}）")
    where = e.filename if e.filename is not None else "ファイル"
    return f"{where}: {what}。"


def _print_findings(found: list[Finding], stream=None) -> None:
    stream = stream or sys.stderr
    for f in found:
        tag = "エラー" if f.is_error else "注意"
        _say(f"{tag} [{f.code}] {f.message}", file=stream)


def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import generate
    from .spec import TemplateError
    from .spec.rates import RatesError

    out = _output_folder(args.out, "出力先フォルダ")
    inputs = [Place(Path(args.records), "記録"), _place(args.rates, "単価ファイル（--rates）")]
    guard([Place(out, "テンプレートの出力先フォルダ（--out）", folder=True)], inputs)
    items = _load_records(args.records)
    try:
        rates = _load_rates(args.rates)
        key = _key(args.key, create=True)
        result = generate(items, out, template=args.template, rates=rates, password=args.password,
                          jobs=args.jobs, key=key, overwrite=args.overwrite, protect=_ids(inputs))
    except (RatesError, TemplateError) as e:
        raise UsageError(str(e)) from None
    _print_findings(result.findings)
    _say(f"{len(result.written)}件のテンプレートを作成しました（出力先: {args.out}）。"
          + (f" {result.failed}件は作成できませんでした。" if result.failed else ""))
    if result.unwritten:
        return EXIT_ERROR  # the output could not be written: not the records' fault
    return EXIT_FINDINGS if result.failed or any(f.is_error for f in result.findings) else EXIT_OK


def _load_rates(path: str | None) -> Path | None:
    """--rates (laid over each template's own, which checks its fields), or None; a JSON syntax
    error is told in Japanese here."""
    if not path:
        return None
    file = _input_file(path, "単価ファイル")
    problem = _json_text_error(file)
    if problem:
        raise UsageError(f"単価ファイル {file} のJSONが不正です（{problem}）。")
    return file


def cmd_check(args: argparse.Namespace) -> int:
    from .check import check_file
    from .signing import Register, assess

    path = _input_file(args.file, "提出されたブック")
    annotate_to = _output_file(args.annotate, "指摘付きの写し（--annotate）") if args.annotate else None
    if annotate_to is not None:
        guard([Place(annotate_to, "指摘付きの写し（--annotate）")], [Place(path, "提出されたブック")])
    if args.template:
        _require_template(args.template)
    key = _key(args.key)
    result = check_file(path, template=args.template, key=key)
    assess(result, Register.load(key.register_path) if key else None)
    if annotate_to is not None:
        from .check.annotate import AnnotateError, annotate

        try:
            annotate(path, result, annotate_to)
        except AnnotateError as e:
            result.findings.append(e.finding)
    if args.json:
        print(jsontext.dumps(result.to_json(), ensure_ascii=False, indent=2))  # strict JSON: never NaN
    else:
        _print_check(result)
    if not result.readable:
        return EXIT_ERROR
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _require_template(name: str) -> None:
    from .spec import TemplateError, load

    try:
        load(name)
    except TemplateError as e:
        raise UsageError(str(e)) from None


def _print_check(result) -> None:
    errors = sum(f.is_error for f in result.findings)
    warnings = len(result.findings) - errors
    _say(f"ファイル: {result.file}")
    if not result.readable:
        _say("結果: 読み取れません")
    elif result.ok:
        _say(f"結果: 受理できます（注意 {warnings}件）")
    else:
        _say(f"結果: 修正が必要です（エラー {errors}件、注意 {warnings}件）")
    for f in sorted(result.findings, key=lambda f: (not f.is_error,)):
        where = f"{f.sheet}!{f.cell} " if f.sheet and f.cell else (f"{f.sheet} " if f.sheet else "")
        _say(f"  {'エラー' if f.is_error else '注意'} [{f.code}] {where}{f.message}")


def cmd_collect(args: argparse.Namespace) -> int:
    from .collect import chase_lines, collect, summary_line
    from .collect.ledger import LedgerError, workspace_for
    from .collect.submission import CSV_NAMES
    from .records import RecordsError
    from .spec import TemplateError

    inbox = _input_folder(args.inbox, "受信フォルダ")
    # The master book is an .xlsx whatever --out says: another name would only mislead.
    master = _output_file(args.out, "マスターブック（--out）", suffix=".xlsx")
    json_out = _output_file(args.json, "記録の書き出し先（--json）") if args.json else None
    store = _output_folder(args.store, "受付台帳のフォルダ（--store）") if args.store else None
    csv_dir = _output_folder(args.csv, "CSVの出力先フォルダ（--csv）") if args.csv else None
    guard([Place(master, "マスターブック（--out）"),
           Place(csv_dir or master.with_name(master.stem + "_csv"), "CSVの出力先フォルダ（--csv）",
                 folder=True, names=CSV_NAMES),
           _place(json_out, "JSON Lines（--json）")],
          [Place(inbox, "受信フォルダ", folder=True), _place(args.expected, "提出予定の記録（--expected）")],
          store=Place(store or workspace_for(master), "台帳フォルダ（--store）"))
    broken = False
    expected = None
    if args.expected:
        expected, broken = _records_of(_load_records(args.expected, "提出予定の記録"), "提出予定の記録 ")
    if args.template:
        _require_template(args.template)
    try:
        result = collect(inbox, master, store=store, expected=expected, json_out=json_out,
                         csv_dir=csv_dir, jobs=args.jobs, template=args.template, key=_key(args.key))
    except (RecordsError, LedgerError, TemplateError) as e:
        raise UsageError(str(e)) from None
    _print_findings(result.office_problems)
    if result.office_changes:
        _say(f"評価担当課入力の変更 {result.office_changes}件を台帳に記録しました。")
    for note in result.notes:
        _say(f"注意: {note}", file=sys.stderr)
    _say(summary_line(result))
    for line in chase_lines(result):
        _say(line)
    for path in result.outputs:
        _say(f"  出力: {path}")
    # What the master book still shows as a problem; files replaced since no longer count.
    problems = (broken or any(not s.result.ok for s in result.current) or bool(result.unreadable)
                or bool(result.rejected) or any(n.finding.is_error for n in result.inbox_notes))
    return EXIT_FINDINGS if problems else EXIT_OK


def cmd_rollforward(args: argparse.Namespace) -> int:
    from . import records
    from .generate import generate, rates_for, template_of
    from .rollforward import Mapping, MappingError, rollforward
    from .spec import TemplateError
    from .spec.rates import RatesError

    if not args.out and not args.records_only:
        raise UsageError("出力先がありません。翌年度のテンプレートを作るなら --out フォルダを、"
                         "記録だけを書き出すなら --records-only ファイルを指定してください（何も書き出していません）。")
    out = _output_folder(args.out, "出力先フォルダ") if args.out else None
    records_only = (_output_file(args.records_only, "繰越後の記録（--records-only）")
                    if args.records_only else None)
    inputs = [Place(Path(args.source), "今年度のマスターブック・記録"), _place(args.rates, "単価ファイル（--rates）"),
              _place(args.mapping, "対応表（--mapping）"), _place(args.add, "追加する記録（--add）")]
    guard([_place(out, "テンプレートの出力先フォルダ（--out）", folder=True),
           _place(records_only, "繰越後の記録（--records-only）")], inputs)
    mapping_file = _input_file(args.mapping, "対応表ファイル") if args.mapping else None
    source_items = _load_records(args.source, "繰越元の記録")
    try:
        source, broken = _records_of(source_items)
        statuses = [item.status for item in source_items if isinstance(item.data, dict)]
        mapping = Mapping.load(mapping_file) if mapping_file else None
        additions, bad_additions = None, False
        if args.add:
            additions, bad_additions = _records_of(_load_records(args.add, "追加する記録"), "追加する記録 ")
        summary = rollforward(source, template=args.template, mapping=mapping, keep_all=args.keep_all,
                              additions=additions, statuses=statuses)
        rates = _load_rates(args.rates)
        for record in summary.rolled[:1]:  # a rates file that does not fit is refused before anything is written
            if rates:
                rates_for(template_of(record, args.template), rates)
    except MappingError as e:
        problem = _json_text_error(mapping_file) if mapping_file else None
        raise UsageError(f"対応表ファイル {mapping_file} のJSONが不正です（{problem}）。" if problem
                         else str(e)) from None
    except (records.RecordsError, RatesError, TemplateError) as e:
        raise UsageError(str(e)) from None
    for problem in summary.problems:
        _say(f"エラー: {problem}", file=sys.stderr)
    _print_roll_summary(summary)
    failed = broken or bad_additions or bool(summary.problems)
    if records_only:
        _write_records(summary.rolled, records_only)
        _say(f"繰越後の記録を書き出しました: {args.records_only}")
    if out:
        result = generate([records.Item(f"{i}件目", r) for i, r in enumerate(summary.rolled, start=1)],
                          out, template=args.template, rates=rates, jobs=args.jobs,
                          key=_key(args.key, create=True), overwrite=args.overwrite, protect=_ids(inputs))
        _print_findings(result.findings)
        _say(f"{len(result.written)}件のテンプレートを作成しました（出力先: {args.out}）。"
             + (f" {result.failed}件は作成できませんでした。" if result.failed else ""))
        failed = failed or bool(result.failed) or any(f.is_error for f in result.findings)
        if result.unwritten:
            return EXIT_ERROR
    return EXIT_FINDINGS if failed else EXIT_OK


def _write_records(recs: list[dict], path: str | Path) -> None:
    from . import records

    try:
        records.dump_json(recs, path)
    except OSError as e:
        raise OutputError(f"記録ファイル（{path}）", e) from None


def _place(path: str | Path | None, what: str, *, folder: bool = False) -> Place | None:
    return Place(Path(path), what, folder=folder) if path else None


def _ids(places: list[Place | None]) -> frozenset[tuple[int, int]]:
    return file_ids(p.path for p in places if p is not None)


def _key(path: str | None, *, create: bool = False):  # noqa: ANN202 -- signing.Key | None
    """The office's key: ``--key``, else the default place (created there by generate)."""
    from . import signing

    key = signing.load_key(path, create=create)
    if key is not None and key.created:
        _say(f"署名用の鍵を作成しました: {key.path}（発行記録: {key.register_path}）。"
              "回収（collect）でも同じ鍵を使います。2つのファイルを一緒に保管してください。", file=sys.stderr)
    return key


def _records_of(items: list, what: str = "") -> tuple[list[dict], bool]:
    """The records among ``items`` and whether any was broken; each broken one is told on stderr."""
    good = []
    for item in items:
        if isinstance(item.data, dict):
            good.append(item.data)
        else:
            _say(f"エラー: {what}{item.where}: {item.error or '記録（JSONオブジェクト）ではありません'}",
                  file=sys.stderr)
    return good, len(good) < len(items)


def _print_roll_summary(summary) -> None:
    carried = len(summary.rolled) - len(summary.added)
    unsubmitted = f"（うち提出なし {len(summary.from_expected)}件）" if summary.from_expected else ""
    _say(f"繰越: {carried}件{unsubmitted}、除外: {len(summary.left_out)}件、追加: {len(summary.added)}件、"
         f"組織・番号の変更: {len(summary.remapped)}件")
    for no, name, why in summary.left_out:
        _say(f"  除外 {no} {name}（{why}）" if why else f"  除外 {no} {name}")
    for no, name, status in summary.from_expected:
        _say(f"  提出なしで繰越 {no} {name}（提出状況: {status}。今年度の提出がないため、提出予定の記録から繰り越しました）")
    for no in summary.added:
        _say(f"  追加 {no}")
    for before, after in summary.remapped:
        _say(f"  変更 {before} → {after}")


def cmd_import_text(args: argparse.Namespace) -> int:
    from .importers.tsukuba import ImportTextError, parse_text

    path = _input_file(args.file, "公表シートのテキスト")
    out = _output_file(args.out, "記録の出力先（--out）")
    guard([Place(out, "記録の出力先（--out）")], [Place(path, "公表シートのテキスト")])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} はUTF-8のテキストではありません（{e.start + 1}バイト目）。"
                         "UTF-8で保存し直してください。") from None
    try:
        recs = parse_text(text)
    except ImportTextError as e:
        _say(f"エラー: {e}", file=sys.stderr)
        return EXIT_FINDINGS
    _write_records(recs, out)
    _say(f"{len(recs)}件の記録を書き出しました: {args.out}")
    return EXIT_OK


def cmd_template(args: argparse.Namespace) -> int:
    from . import resources
    from .spec import TemplateError, available, load_unchecked
    from .spec.lint import bundled_schema_files, lint, write_generated

    names = [args.dir] if args.dir else available()
    failed = False
    for name in names:
        try:
            tpl = load_unchecked(name)
        except TemplateError as e:
            _say(f"エラー: {e}", file=sys.stderr)
            failed = True
            continue
        if args.action == "schema":
            changed = write_generated(tpl)
            _say(f"{tpl.directory}: " + (f"{', '.join(changed)} を作り直しました。" if changed else "変更はありません。"))
            continue
        problems = lint(tpl)
        for problem in problems:
            _say(f"エラー: {tpl.directory}/{problem}", file=sys.stderr)
        _say(f"{tpl.directory}: " + (f"問題 {len(problems)}件。" if problems else "問題はありません。"))
        failed = failed or bool(problems)
    if args.action == "schema" and not args.dir:
        for name, text in bundled_schema_files().items():
            path = resources.schemas_dir() / name
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                _say(f"{path} を作り直しました。")
    return EXIT_ERROR if failed else EXIT_OK


_KEY_HELP = ("署名用の鍵ファイル（既定: $SHEETTOOL_KEY、なければ ~/.config/sheettool/key。"
             "generate が初回に作成。発行記録は同じ場所の <鍵>.issued.jsonl）")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sheettool", description="事務事業マネジメントシートの作成・回収・検証・翌年度繰越")
    parser.add_argument("--version", action="version", version=f"sheettool {__version__}",
                        help="バージョンを表示して終了する")
    sub = parser.add_subparsers(title="コマンド", dest="command", required=True, parser_class=_Parser,
                                metavar="{generate,check,collect,rollforward,import-text,template}")
    jobs = {"type": _count, "default": None, "metavar": "N", "help": "並列数（既定: CPU数）"}

    g = sub.add_parser("generate", help="記録から入力用テンプレート（.xlsx）を作成する",
                       description="記録から、公表様式の形をした入力用テンプレート（1事業1ファイル）を作ります。")
    g.add_argument("records", metavar="RECORDS", help="記録（JSON配列、JSON Lines、またはマスターブック）")
    g.add_argument("--out", required=True, metavar="DIR", help="出力先フォルダ（無ければ作ります）")
    g.add_argument("--rates", metavar="FILE", help="人件費単価ファイル（JSON）。省略時はテンプレート既定の単価")
    g.add_argument("--template", metavar="NAME",
                   help="テンプレート名（templates/ 以下）またはフォルダ。既定: 各記録の template（無ければ tsukuba）")
    g.add_argument("--password", metavar="PW", help="シート保護のパスワード（省略時はパスワードなしで保護）")
    g.add_argument("--jobs", **jobs)
    g.add_argument("--overwrite", action="store_true", help="出力先に同じ名前のファイルがあれば上書きする")
    g.add_argument("--key", metavar="FILE", help=_KEY_HELP)
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("check", help="提出されたブックを読み取り、指摘を表示する",
                       description="提出されたブックを読み取り、問題をセル単位で示します。")
    c.add_argument("file", metavar="FILE.xlsx", help="提出されたブック（.xlsx / .xlsm）")
    c.add_argument("--json", action="store_true", help="結果をJSONで出力する")
    c.add_argument("--annotate", metavar="OUT.xlsx", help="指摘箇所に色とコメントを付けた写しを書き出す")
    c.add_argument("--template", metavar="NAME",
                   help="テンプレート名またはフォルダ（既定: ブックの _meta に記録されたもの）")
    c.add_argument("--key", metavar="FILE", help=_KEY_HELP)
    c.set_defaults(func=cmd_check)

    k = sub.add_parser("collect", help="提出されたブックを回収・検証し、マスターブックにまとめる",
                       description="受信フォルダのブックをすべて検証・保管し、マスターブックにまとめます。")
    k.add_argument("inbox", metavar="INBOX", help="提出ファイルのあるフォルダ（下位フォルダも読む）")
    k.add_argument("--out", required=True, metavar="MASTER.xlsx", help="マスターブック（.xlsx）の出力先")
    k.add_argument("--expected", metavar="RECORDS", help="提出を待つ事業の記録（未提出の確認に使う）")
    k.add_argument("--json", metavar="OUT", help="現在の記録を JSON Lines で書き出す")
    k.add_argument("--store", metavar="DIR",
                   help="受付台帳の保存先フォルダ（既定: マスターブックと同じ場所の <名前>.sheettool）")
    k.add_argument("--csv", metavar="DIR", help="CSVの出力先フォルダ（既定: マスターブックと同じ場所の <名前>_csv）")
    k.add_argument("--jobs", **jobs)
    k.add_argument("--template", metavar="NAME",
                   help="テンプレート名またはフォルダ（既定: 各ブックの _meta に記録されたもの）")
    k.add_argument("--key", metavar="FILE", help=_KEY_HELP)
    k.set_defaults(func=cmd_collect)

    r = sub.add_parser("rollforward", help="今年度のマスターブック（または記録）から翌年度のテンプレートを作る",
                       description="今年度のマスターブック（または記録）から翌年度のテンプレートを作ります。")
    r.add_argument("source", metavar="SOURCE", help="マスターブック（collect の出力）または記録（JSON / JSON Lines）")
    r.add_argument("--out", metavar="DIR", help="翌年度テンプレートの出力先フォルダ")
    r.add_argument("--rates", metavar="FILE", help="人件費単価ファイル（JSON）。翌年度までの単価が必要")
    r.add_argument("--records-only", metavar="OUT.json", help="テンプレートを作らず、繰越後の記録だけを書き出す")
    r.add_argument("--mapping", metavar="FILE", help="組織改編・事業番号の対応表（JSON）")
    r.add_argument("--add", metavar="RECORDS", help="翌年度に追加する新規事業の記録")
    r.add_argument("--keep-all", action="store_true", help="方向性が休止・廃止／完了の事業も繰り越す")
    r.add_argument("--template", metavar="NAME",
                   help="テンプレート名またはフォルダ。既定: 各記録の template（無ければ tsukuba）")
    r.add_argument("--jobs", **jobs)
    r.add_argument("--overwrite", action="store_true", help="出力先に同じ名前のファイルがあれば上書きする")
    r.add_argument("--key", metavar="FILE", help=_KEY_HELP)
    r.set_defaults(func=cmd_rollforward)

    tp = sub.add_parser("template", help="様式（テンプレート）の定義を検査する・生成するスキーマを作り直す")
    tp.add_argument("action", choices=["lint", "schema"],
                    help="lint: 定義の誤りを日本語で示す / schema: 記録のスキーマを作り直す")
    tp.add_argument("dir", nargs="?", help="テンプレートのフォルダ（省略時は同梱のすべて）")
    tp.set_defaults(func=cmd_template)

    t = sub.add_parser("import-text", help="公表シートのテキストから記録を作る",
                       description="公表シートのテキストから記録（JSON）を作ります。")
    t.add_argument("file", metavar="FILE.txt", help="公表シートのテキスト（UTF-8）")
    t.add_argument("--out", required=True, metavar="RECORDS.json", help="出力する記録ファイル（JSON）")
    t.set_defaults(func=cmd_import_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help and --version print, then ask to exit
            return e.code if isinstance(e.code, int) else EXIT_OK
        return args.func(args)
    except UsageError as e:
        _say(f"エラー: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OutputConflict as e:
        _say(f"エラー [{e.finding.code}] {e.finding.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyFileError as e:
        _say(f"エラー: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        _say("中断しました。", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OutputError as e:  # an output that cannot be written, said with what it was
        _say(f"エラー: {e}", file=sys.stderr)
        return EXIT_ERROR
    except RecursionError:  # input nested deeper than any real file: said plainly, not as a bug
        _say("エラー: 入力の入れ子が深すぎるため処理できません。入力ファイルを確認してください。", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:  # a file that cannot be read or written: permissions, a full disk, ...
        if os.environ.get("SHEETTOOL_DEBUG"):
            traceback.print_exc()
        _say(f"エラー: {_os_error_message(e)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # a bug, not bad input: say so plainly, keep the trace for debugging
        if os.environ.get("SHEETTOOL_DEBUG"):
            traceback.print_exc()
        _say(f"エラー: 予期しない内部エラーが発生しました（{type(e).__name__}: {e}）。"
              "SHEETTOOL_DEBUG=1 を付けて再実行すると詳細が表示されます。", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
