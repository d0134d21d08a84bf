"""Command line: ``sheettool generate | check | collect | rollforward | import-text``.

Exit codes (CONTRACT §4): 0 success, 1 finished but the input has errors,
2 bad usage or a file that cannot be read. Bad input never shows a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .findings import Finding

EXIT_OK, EXIT_FINDINGS, EXIT_UNREADABLE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or an unreadable input; printed as is, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print English usage and exit 2
        self.print_usage(sys.stderr)
        raise UsageError(f"コマンドの指定が正しくありません: {message}")


def _print_findings(found: list[Finding], stream=None) -> None:
    stream = stream or sys.stderr
    for f in found:
        tag = "エラー" if f.is_error else "注意"
        print(f"{tag} [{f.code}] {f.message}", file=stream)


def cmd_generate(args: argparse.Namespace) -> int:
    from . import records, sources
    from .generate import generate
    from .spec import TemplateError
    from .spec.rates import RatesError

    try:
        items = sources.load_records(args.records)
        result = generate(items, args.out, template=args.template, rates=args.rates, password=args.password,
                          jobs=args.jobs)
    except (records.RecordsError, RatesError, TemplateError) as e:
        raise UsageError(str(e)) from None
    _print_findings(result.findings)
    print(f"{len(result.written)}件のテンプレートを作成しました（出力先: {args.out}）。"
          + (f" {result.failed}件は作成できませんでした。" if result.failed else ""))
    return EXIT_FINDINGS if result.failed or any(f.is_error for f in result.findings) else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    import json

    from .check import check_file

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"ファイルが見つかりません: {path}")
    if args.template:
        _require_template(args.template)
    result = check_file(path, template=args.template)
    if args.annotate:
        from .check.annotate import AnnotateError, annotate

        try:
            annotate(path, result, Path(args.annotate))
        except AnnotateError as e:
            result.findings.append(e.finding)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_check(result)
    if not result.readable:
        return EXIT_UNREADABLE
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
    print(f"ファイル: {result.file}")
    if not result.readable:
        print("結果: 読み取れません")
    elif result.ok:
        print(f"結果: 受理できます（注意 {warnings}件）")
    else:
        print(f"結果: 修正が必要です（エラー {errors}件、注意 {warnings}件）")
    for f in sorted(result.findings, key=lambda f: (not f.is_error,)):
        where = f"{f.sheet}!{f.cell} " if f.sheet and f.cell else (f"{f.sheet} " if f.sheet else "")
        print(f"  {'エラー' if f.is_error else '注意'} [{f.code}] {where}{f.message}")


def cmd_collect(args: argparse.Namespace) -> int:
    from . import records, sources
    from .collect import collect, summary_line
    from .collect.ledger import LedgerError

    inbox = Path(args.inbox)
    if not inbox.is_dir():
        raise UsageError(f"受信フォルダが見つかりません: {inbox}")
    broken = False
    try:
        expected = None
        if args.expected:
            expected, broken = _records_of(sources.load_records(args.expected), "提出予定の記録 ")
        if args.template:
            _require_template(args.template)
        result = collect(inbox, args.out, store=args.store, expected=expected, json_out=args.json,
                         csv_dir=args.csv, jobs=args.jobs, template=args.template)
    except (records.RecordsError, LedgerError) as e:
        raise UsageError(str(e)) from None
    print(summary_line(result))
    for path in result.outputs:
        print(f"  出力: {path}")
    # What the master book still shows as a problem; files replaced since no longer count.
    problems = broken or any(not s.result.ok for s in result.current) or bool(result.unreadable)
    return EXIT_FINDINGS if problems else EXIT_OK


def cmd_rollforward(args: argparse.Namespace) -> int:
    from . import records, sources
    from .generate import generate, template_of
    from .rollforward import Mapping, MappingError, rollforward
    from .spec import TemplateError
    from .spec.rates import RatesError

    try:
        source, broken = _records_of(sources.load_records(args.source))
        mapping = Mapping.load(args.mapping) if args.mapping else None
        additions, bad_additions = None, False
        if args.add:
            additions, bad_additions = _records_of(sources.load_records(args.add), "追加する記録 ")
        summary = rollforward(source, template=args.template,
                              mapping=mapping, keep_all=args.keep_all, additions=additions)
        if args.rates:  # a broken rates file is refused before anything is written
            from .generate import rates_for

            for record in summary.rolled[:1]:
                rates_for(template_of(record, args.template), args.rates)
    except (records.RecordsError, RatesError, TemplateError, MappingError) as e:
        raise UsageError(str(e)) from None
    for problem in summary.problems:
        print(f"エラー: {problem}", file=sys.stderr)
    _print_roll_summary(summary)
    failed = broken or bad_additions or bool(summary.problems)
    if args.records_only:
        records.dump_json(summary.rolled, args.records_only)
        print(f"繰越後の記録を書き出しました: {args.records_only}")
    if args.out:
        result = generate([records.Item(f"{i}件目", r) for i, r in enumerate(summary.rolled, start=1)],
                          args.out, template=args.template, rates=args.rates, jobs=args.jobs)
        _print_findings(result.findings)
        print(f"{len(result.written)}件のテンプレートを作成しました（出力先: {args.out}）。")
        failed = failed or bool(result.failed) or any(f.is_error for f in result.findings)
    return EXIT_FINDINGS if failed else EXIT_OK


def _records_of(items: list, what: str = "") -> tuple[list[dict], bool]:
    """The records among ``items`` and whether any was broken; each broken one is told on stderr."""
    good = []
    for item in items:
        if isinstance(item.data, dict):
            good.append(item.data)
        else:
            print(f"エラー: {what}{item.where}: {item.error or '記録（JSONオブジェクト）ではありません'}",
                  file=sys.stderr)
    return good, len(good) < len(items)


def _print_roll_summary(summary) -> None:
    carried = len(summary.rolled) - len(summary.added)
    print(f"繰越: {carried}件、除外: {len(summary.left_out)}件、追加: {len(summary.added)}件、"
          f"組織・番号の変更: {len(summary.remapped)}件")
    for no, name, why in summary.left_out:
        print(f"  除外 {no} {name}（{why}）" if why else f"  除外 {no} {name}")
    for no in summary.added:
        print(f"  追加 {no}")
    for before, after in summary.remapped:
        print(f"  変更 {before} → {after}")


def cmd_import_text(args: argparse.Namespace) -> int:
    from . import records
    from .importers.tsukuba import ImportTextError, parse_text

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"ファイルが見つかりません: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path} をUTF-8のテキストとして読み取れません: {e}") from None
    try:
        recs = parse_text(text)
    except ImportTextError as e:
        print(f"エラー: {e}", file=sys.stderr)
        return EXIT_FINDINGS
    records.dump_json(recs, args.out)
    print(f"{len(recs)}件の記録を書き出しました: {args.out}")
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
            print(f"エラー: {e}", file=sys.stderr)
            failed = True
            continue
        if args.action == "schema":
            changed = write_generated(tpl)
            print(f"{tpl.directory}: " + (f"{', '.join(changed)} を作り直しました。" if changed else "変更はありません。"))
            continue
        problems = lint(tpl)
        for problem in problems:
            print(f"エラー: {tpl.directory}/{problem}", file=sys.stderr)
        print(f"{tpl.directory}: " + (f"問題 {len(problems)}件。" if problems else "問題はありません。"))
        failed = failed or bool(problems)
    if args.action == "schema" and not args.dir:
        for name, text in bundled_schema_files().items():
            path = resources.schemas_dir() / name
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                print(f"{path} を作り直しました。")
    return EXIT_UNREADABLE if failed else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sheettool", description="事務事業マネジメントシートの作成・回収・検証・翌年度繰越")
    parser.add_argument("--version", action="version", version=f"sheettool {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="{generate,check,collect,rollforward,import-text,template}")

    g = sub.add_parser("generate", help="記録から入力用テンプレート（.xlsx）を作成する")
    g.add_argument("records", help="記録（JSON配列、JSON Lines、またはマスターブック）")
    g.add_argument("--out", required=True, help="出力先フォルダ")
    g.add_argument("--rates", help="人件費単価ファイル（JSON）。省略時はテンプレート既定の単価")
    g.add_argument("--template", help="テンプレート名（templates/ 以下）またはフォルダ。既定: 各記録の template（無ければ tsukuba）")
    g.add_argument("--password", help="シート保護のパスワード（省略時はパスワードなしで保護）")
    g.add_argument("--jobs", type=int, default=None, help="並列数（既定: CPU数）")
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("check", help="提出されたブックを読み取り、指摘を表示する")
    c.add_argument("file", help="提出されたブック（.xlsx / .xlsm）")
    c.add_argument("--json", action="store_true", help="結果をJSONで出力する")
    c.add_argument("--annotate", metavar="OUT.xlsx", help="指摘箇所に色とコメントを付けた写しを書き出す")
    c.add_argument("--template", help="テンプレート名またはフォルダ（既定: ブックの _meta に記録されたもの）")
    c.set_defaults(func=cmd_check)

    k = sub.add_parser("collect", help="提出されたブックを回収・検証し、マスターブックにまとめる")
    k.add_argument("inbox", help="提出ファイルのあるフォルダ（下位フォルダも読む）")
    k.add_argument("--out", required=True, help="マスターブック（.xlsx）の出力先")
    k.add_argument("--expected", metavar="RECORDS", help="提出を待つ事業の記録（未提出の確認に使う）")
    k.add_argument("--json", metavar="OUT", help="現在の記録を JSON Lines で書き出す")
    k.add_argument("--store", help="受付台帳の保存先フォルダ（既定: マスターブックと同じ場所の <名前>.sheettool）")
    k.add_argument("--csv", help="CSVの出力先フォルダ（既定: マスターブックと同じ場所の <名前>_csv）")
    k.add_argument("--jobs", type=int, default=None, help="並列数（既定: CPU数）")
    k.add_argument("--template", help="テンプレート名またはフォルダ（既定: 各ブックの _meta に記録されたもの）")
    k.set_defaults(func=cmd_collect)

    r = sub.add_parser("rollforward", help="今年度のマスターブック（または記録）から翌年度のテンプレートを作る")
    r.add_argument("source", help="マスターブック（collect の出力）または記録（JSON / JSON Lines）")
    r.add_argument("--out", help="翌年度テンプレートの出力先フォルダ")
    r.add_argument("--rates", help="人件費単価ファイル（JSON）。翌年度までの単価が必要")
    r.add_argument("--records-only", metavar="OUT.json", help="テンプレートを作らず、繰越後の記録だけを書き出す")
    r.add_argument("--mapping", help="組織改編・事業番号の対応表（JSON）")
    r.add_argument("--add", metavar="RECORDS", help="翌年度に追加する新規事業の記録")
    r.add_argument("--keep-all", action="store_true", help="方向性が休止・廃止／完了の事業も繰り越す")
    r.add_argument("--template", help="テンプレート名またはフォルダ。既定: 各記録の template（無ければ tsukuba）")
    r.add_argument("--jobs", type=int, default=None, help="並列数（既定: CPU数）")
    r.set_defaults(func=cmd_rollforward)

    tp = sub.add_parser("template", help="様式（テンプレート）の定義を検査する・生成するスキーマを作り直す")
    tp.add_argument("action", choices=["lint", "schema"],
                    help="lint: 定義の誤りを日本語で示す / schema: 記録のスキーマを作り直す")
    tp.add_argument("dir", nargs="?", help="テンプレートのフォルダ（省略時は同梱のすべて）")
    tp.set_defaults(func=cmd_template)

    t = sub.add_parser("import-text", help="公表シートのテキストから記録を作る")
    t.add_argument("file", help="公表シートのテキスト（UTF-8）")
    t.add_argument("--out", required=True, help="出力する記録ファイル（JSON）")
    t.set_defaults(func=cmd_import_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UsageError as e:
        print(f"エラー: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    except KeyboardInterrupt:
        print("中断しました。", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # a bug, not bad input: say so plainly, keep the trace for debugging
        if os.environ.get("SHEETTOOL_DEBUG"):
            traceback.print_exc()
        print(f"エラー: 予期しない内部エラーが発生しました（{type(e).__name__}: {e}）。"
              "SHEETTOOL_DEBUG=1 を付けて再実行すると詳細が表示されます。", file=sys.stderr)
        return EXIT_UNREADABLE


if __name__ == "__main__":
    sys.exit(main())
