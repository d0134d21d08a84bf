"""The message catalog: stable codes, Japanese templates and remedies.

Templates use ``{sheet}``, ``{cell}``, ``{field}``, ``{value}`` and
code-specific names. A rendered message is the problem, then the remedy.
Codes never change meaning once released; retire a code rather than reuse it.

Ranges: F1xx file cannot be read as a workbook; T2xx identity and tampering;
V3xx a cell's value; S4xx record schema; R5xx cross-field rules;
G6xx generation input; A7xx the annotated copy; C8xx collect; O9xx where outputs go
(refused before anything is written, exit code 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Formatter
from typing import Any


@dataclass(frozen=True)
class Message:
    code: str
    severity: str  # "error" | "warning"
    template: str
    remedy: str = ""

    def render(self, values: dict[str, Any]) -> str:
        shown = {k: visible(v) if isinstance(v, str) else v for k, v in values.items()}
        text = _SafeFormatter().format(self.template, **shown)
        if self.remedy:
            text += " " + _SafeFormatter().format(self.remedy, **shown)
        return text


# C0 controls and DEL as their Unicode control pictures (U+2400…), C1 controls and the
# bidirectional overrides as \uXXXX: a message or file name shown on a terminal or written
# into XML can neither run an escape sequence, reorder what follows, nor break the XML.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")


def _picture(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control or direction-changing character shown as a visible symbol."""
    return _INVISIBLE.sub(lambda m: _picture(m.group()), text) if _INVISIBLE.search(text) else text


class _SafeFormatter(Formatter):
    """Leaves unknown placeholders visible instead of raising."""

    def get_value(self, key, args, kwargs):  # noqa: ANN001
        if isinstance(key, str):
            return kwargs.get(key, "{" + key + "}")
        return super().get_value(key, args, kwargs)


E, W = "error", "warning"

_MESSAGES = [
    # --- F1xx: the file is not a readable workbook (see filesafety.py) ---
    Message("F100", E, "ファイルを開けません（{detail}）。",
            "sheettoolで作成したテンプレート（.xlsx）を保存し直して提出してください。"),
    Message("F101", E, "{file} は Excel 97-2003 形式（.xls）のファイルです。",
            "Excelで開き、「名前を付けて保存」で「Excel ブック（*.xlsx）」を選んで保存し直して提出してください。"),
    Message("F102", E, "{file} はパスワードで保護（暗号化）されたファイルのため読み取れません。",
            "Excelで開き、「ファイル」→「情報」→「ブックの保護」→「パスワードを使用して暗号化」でパスワードを消して保存し直してください。"),
    Message("F103", E, "{file} は Excel ブックではなく、テキスト形式（CSV など）のファイルです。",
            "拡張子を変えるだけでは変換されません。配布したテンプレート（.xlsx）に入力し、「Excel ブック（*.xlsx）」として保存して提出してください。"),
    Message("F104", E, "{file} は PDF ファイルです。PDF からは読み取れません。",
            "配布したテンプレート（.xlsx）に入力し、Excel ブックのまま提出してください。"),
    Message("F105", E, "{file} は空のファイル（0 バイト）です。",
            "保存が完了しているか確認し、もう一度提出してください。"),
    Message("F106", E, "{file} は OpenDocument スプレッドシート（.ods）形式です。",
            "LibreOffice Calc などで「ファイル形式を選んで保存」から「Excel 2007-365 (.xlsx)」を選んで保存し直してください。"),
    Message("F107", E, "{file} は Excel バイナリブック（.xlsb）形式です。",
            "Excelで開き、「名前を付けて保存」で「Excel ブック（*.xlsx）」を選んで保存し直して提出してください。"),
    Message("F108", E, "{file} は Excel ブックではない ZIP 形式のファイル（{what}）です。",
            "提出するファイルを取り違えていないか確認し、記入したテンプレート（.xlsx）を提出してください。"),
    Message("F109", E, "{file} は Excel ブックとして認識できない形式のファイルです。",
            "記入したテンプレートを Excel で開き、「Excel ブック（*.xlsx）」として保存し直して提出してください。"),
    Message("F110", E, "{file} は壊れているため読み取れません（{detail}）。",
            "元のファイルを Excel で開けるか確認し、保存し直してからもう一度提出してください。"),
    Message("F111", E, "{file} は大きすぎるため読み取りません（{detail}）。",
            "不要なシート・画像・行列の書式を削除して保存し直し、提出してください。"),
    Message("F112", E, "{file} の内部データ（{part}）は展開すると異常に大きくなります（{detail}）。不正に加工されたファイル（ZIP 爆弾）の可能性があるため読み取りを中止しました。",
            "配布したテンプレートに入力し直して提出してください。"),
    Message("F113", E, "{file} に不正な内部名（{part}）があります（{detail}）。不正に加工されたファイルの可能性があるため読み取りません。",
            "配布したテンプレートに入力し直して提出してください。"),
    Message("F114", E, "{file} に Excel ブックに必要な構成要素（{part}）がありません。",
            "Excel で開けるか確認し、「Excel ブック（*.xlsx）」として保存し直して提出してください。"),
    Message("F115", E, "{file} の内部データ（{part}）に文書型定義（DTD）またはエンティティ宣言があります。不正に加工されたファイル（XML 爆弾・外部参照）の可能性があるため読み取りを中止しました。",
            "配布したテンプレートに入力し直して提出してください。"),
    Message("F116", E, "{file} の内部データ（{part}）が XML として読み取れません（{detail}）。",
            "Excel で開けるか確認し、「Excel ブック（*.xlsx）」として保存し直して提出してください。"),
    Message("F117", E, "{file} の内部データ（{part}）は対応していない方式で保存されています（{detail}）。",
            "Excel で開き、「Excel ブック（*.xlsx）」として保存し直して提出してください。"),
    Message("F118", W, "{file} にはマクロ（VBA）が含まれています。マクロは無視して読み取ります。",
            "次回からはマクロを含まない「Excel ブック（*.xlsx）」で提出してください。"),
    Message("F119", W, "{file} に他のファイルへの外部リンクがあります。リンク先は参照せず、保存されている値のみを読み取ります。",
            "「データ」タブの「リンクの編集」（または「ブックのリンク」）でリンクを解除してから保存し直してください。"),
    Message("F120", W, "{file} に ActiveX コントロールが含まれています。コントロールは無視して読み取ります。",
            "不要なコントロールを削除して保存し直してください。"),
    Message("F121", W, "{file} に埋め込みオブジェクト（他のファイルなど）が含まれています。埋め込まれた内容は読み取りません。",
            "必要な内容はセルに直接入力してください。"),
    Message("F122", E, "{file} は読み取りの途中で処理できなくなったため、読み取れませんでした（{detail}）。",
            "配布したテンプレートに入力し直すか、Excel で開いて「Excel ブック（*.xlsx）」として保存し直して提出してください。"
            "繰り返し起きる場合は、このファイルを添えて評価担当課に連絡してください。"),
    Message("F123", E, "{file} は読み取りに必要なメモリが上限（{limit}）を超えたため、読み取りを中止しました。",
            "不要なシート・画像・行列の書式を削除して保存し直し、提出してください。"),
    # --- T2xx: identity and tampering ---
    Message("T201", E, "sheettoolで作成したテンプレートではありません（隠しシート「_meta」がありません）。",
            "評価担当課から配布されたテンプレートに記入して提出してください。"),
    Message("T202", E, "数式が変更されています: {label}（{cell}）は数式ではなく値「{value}」になっています。",
            "このセルは自動計算です。値を入力せず、配布されたテンプレートに記入し直すか、評価担当課に連絡してください。"),
    Message("T203", E, "数式が変更されています: {label}（{cell}）の数式が作成時と異なります（現在「={found}」）。",
            "このセルは自動計算です。配布されたテンプレートに記入し直すか、評価担当課に連絡してください。"),
    Message("T204", W, "{label}（{cell}）に保存された計算結果 {cached} が、入力値からの再計算 {computed} と一致しません。再計算した値を使います。",
            "Excelで開いて再計算（F9）してから保存し直すと、この注意は出なくなります。"),
    Message("T205", W, "テンプレートの種類「{template}」を知りません。既定のテンプレート「{default}」として読み取ります。",
            "評価担当課から配布されたテンプレートに記入したか確認してください。"),
    Message("T206", E, "テンプレートの版が異なります（このファイル {found}、現在 {expected}）。",
            "最新のテンプレートに記入し直してください。"),
    Message("T207", W, "テンプレートの版が異なります（このファイル {found}、現在 {expected}）。読み取りには支障ありません。",
            "次回からは評価担当課が配布する最新のテンプレートを使ってください。"),
    Message("T208", E, "評価年度が一致しません（作成時 {expected}、シート上 {found}）。",
            "正しい年度のテンプレートに記入して提出してください。"),
    Message("T209", E, "事業番号が一致しません（作成時 {expected}、シート上 {found}）。",
            "この事業のテンプレートに記入して提出してください。"),
    Message("T210", W, "シート名が「{expected}」から「{found}」に変更されています（名前の定義から読み取りました）。",
            "シート名は「{expected}」に戻してください。"),
    Message("T240", W, "入力チェック（_check シート）の式が作成時と異なります（{count}か所、最初は {cell}）。シート上の入力チェックの表示は信用できません。",
            "配布されたテンプレートに記入し直すか、評価担当課に連絡してください（check の結果には影響しません）。"),
    Message("T241", W, "入力チェック（_check シート）がありません。シート上での入力チェックは働きません。",
            "配布されたテンプレートに記入し直すか、評価担当課に連絡してください（check の結果には影響しません）。"),
    Message("T211", W, "想定外のシート「{name}」があります（読み取りには使いません）。",
            "不要なシートは削除してください。"),
    Message("T212", W, "シートの並び順が変更されています。",
            "マネジメントシートを先頭に戻してください。"),
    Message("T213", W, "シート「{sheet}」の保護が解除されています。ロックされた内容は個別に検査しました。",
            "シートの保護は解除せずに入力してください。"),
    Message("T214", E, "変更できないセル {label}（{cell}）の値が変更されています（作成時「{old}」→ 現在「{new}」）。",
            "元の値に戻すか、評価担当課に連絡してください。"),
    Message("T215", E, "隠しシート「_meta」の内容が作成時から変更されています。",
            "配布されたテンプレートに記入し直してください。"),
    Message("T216", W, "{label}（{cell}）のセルのロックが解除されています。",
            "このセルは変更できません。配布されたテンプレートに記入し直すか、評価担当課に連絡してください。"),
    Message("T217", W, "項目名（{cell}）が「{expected}」から「{found}」に変更されています。",
            "項目名は変更せず、「{expected}」に戻してください。"),
    Message("T218", W, "隠しシート「{name}」が表示されています。",
            "このシートは編集せず、非表示に戻してください。"),
    Message("T219", W, "名前の定義「{name}」が見つからないため、既定の位置 {cell} から読み取りました。",
            "名前の定義（「数式」→「名前の管理」）は削除・変更しないでください。"),
    Message("T220", E, "マネジメントシートが見つかりません。",
            "評価担当課から配布されたテンプレートに記入して提出してください。"),
    Message("T221", W, "名前の定義「{name}」の参照先「{target}」はセルとして正しくないため、既定の位置 {cell} から読み取りました。",
            "名前の定義（「数式」→「名前の管理」）は削除・変更しないでください。"),
    Message("T231", E, "署名が一致しません。作成後に隠しシート「_meta」の内容（事業番号・年度・ロックした値など）が書き換えられています。偽造されたファイルの可能性があるため、受け付けません。",
            "評価担当課から配布されたテンプレートに記入し直して提出してください。"),
    Message("T232", E, "評価担当課の鍵とは別の鍵（{found}）で署名されています（この端末の鍵は {expected}）。受け付けません。",
            "別の端末・別の鍵で作成したテンプレートなら、その鍵ファイルを --key で指定して確認してください。そうでなければ、配布されたテンプレートに記入し直して提出してください。"),
    Message("T233", W, "署名のない（署名を導入する前に作成された）テンプレートです。改ざんの検査はハッシュの照合だけで行いました。",
            "次回からは評価担当課が新しく配布するテンプレートを使ってください。"),
    Message("T234", E, "署名がありません。この事業（{project_no}）のテンプレートは署名付きで発行されているため、署名のないファイルは受け付けません。",
            "評価担当課から配布されたテンプレートに記入し直して提出してください。"),
    Message("T235", E, "署名は正しいものの、発行の記録（{register}）にないテンプレートです。受け付けません。",
            "評価担当課で、このテンプレートを作成した端末の発行記録（鍵ファイルと同じフォルダ）を確認してください。"),
    Message("T236", E, "発行の記録と一致しません（発行時 {issued}、このファイル {found}）。受け付けません。",
            "この事業のテンプレートに記入して提出してください。"),
    Message("T237", W, "署名を確認していません（この端末に評価担当課の鍵がありません）。",
            "各課での確認ではこのままで構いません。評価担当課が回収のときに確認します。"),
    # --- V3xx: one cell's value ---
    Message("V301", W, "{label}（{cell}）の「{raw}」を {value} として読み取りました（{changes}）。",
            "次からは入力欄の案内どおりに入力してください。"),
    # V303 is retired (a formula in an input read from its cached result, a warning): see V310.
    Message("V303", W, "{label}（{cell}）に数式「={formula}」が入力されています。保存された計算結果 {value} を値として読み取りました。",
            "入力欄には数式ではなく値を入力してください。"),
    Message("V304", E, "{label}（{cell}）は1つだけ選ぶ項目ですが、複数にチェックがあります（{chosen}）。",
            "どれか1つだけにチェックを付けてください。"),
    Message("V310", E, "{label}（{cell}）に数式「={formula}」が入力されています。数式とその計算結果は読み取らず、{kept}。",
            "入力欄には数式ではなく値を入力してください（計算した結果を入れるときは「値の貼り付け」を使ってください）。"),
    Message("V302", E, "{label}（{cell}）: {problem}。",
            "{hint}"),
    # --- S4xx: record schema ---
    Message("S401", E, "{label}{at}{problem}", "セルの値を修正してください。"),
    # --- R5xx: cross-field rules ---
    Message("R501", E, "{label}（{cell}）が未入力です。", "入力してください。"),
    Message("R502", W, "{label}（{cell}）の値 {value} が式で計算した値 {expected} と一致しません（作成時の報告値のまま読み取りました）。",
            "報告値に誤りがある場合は評価担当課に連絡してください。"),
    Message("R503", W, "{item}{no}「{name}」の{what}（{cell}）が未入力です。", "入力してください。"),
    Message("R504", E, "{item}{no}に値がありますが、{key}（{cell}）が未入力です。",
            "{key}を入力するか、値を消してください。"),
    Message("R505", E, "{label}（{cell}）の「{value}」は、この事業では使えません（{title}）。",
            "一覧から選び直してください。"),
    Message("R506", E, "{label}（{cell}）を入力してください（{title}）。", "入力してください。"),
    Message("R507", W, "{label}（{cell}）の文章が印刷枠に収まりません（約{length}文字、枠の目安は{capacity}文字）。",
            "文章を短くするか、行の高さを広げてください。"),
    # --- C8xx: collect ---
    Message("C801", E, "{file} は別の様式「{name}」（{template}）の提出です。この様式（{master}）のマスターブックには含めません。",
            "その様式のマスターブックを別に作成してください（sheettool collect 受信フォルダ --template {template} --out 別のマスターブック.xlsx）。"),
    Message("C802", E, "{file} について受付台帳に保存されていた読み取り結果が壊れていて、保管したファイルからも読み直せないため、読み取れなかったものとして扱います（{detail}）。",
            "提出元に、このファイルを保存し直して提出し直してもらってください。"),
    Message("C803", E, "{file} は読み取りの途中で処理が異常終了したため、読み取れませんでした（{detail}）。",
            "配布したテンプレートに入力し直して提出してください。繰り返し起きる場合は、このファイルを添えて評価担当課に連絡してください。"),
    Message("C804", W, "評価担当課入力（{cell}）の事業番号 {no} の{label}: {problem}。この値は台帳に記録していません。",
            "入力し直してから、もう一度 sheettool collect を実行してください。"),
    Message("C805", W, "マスターブック {file} を読み取れないため、評価担当課入力の内容を読み戻せませんでした。台帳に記録済みの入力は失われていません。",
            "マスターブックを Excel で開けるか確認してください。今回の実行でマスターブックは書き直されます。"),
    Message("C810", E, "{file} は{found}のテンプレートです。マスターブックの年度（{expected}）と異なるため、取り込みません。",
            "{expected}のテンプレートに記入して提出してください。"),
    Message("C811", W, "{file} は Excel・LibreOffice が開いている間に作る一時ファイル（ロックファイル）で、提出ファイルではありません。",
            "このファイルを開いたままの人がいれば閉じてもらい、残っていれば削除してから回収し直してください。"),
    Message("C812", E, "{file} は通常のファイルではありません（{kind}）。読み取りません。",
            "提出されたブック（.xlsx）そのものを受信フォルダに保存し直してください。"),
    Message("C813", E, "{file} はシンボリックリンク（別の場所を指す参照）です。リンク先は読みません。",
            "リンクではなく、提出されたブック（.xlsx）そのものを受信フォルダに置いてください。"),
    Message("C814", W, "{file} は中断した sheettool の処理が残した一時ファイルで、提出ファイルではありません。",
            "削除して構いません（sheettool が出力を受信フォルダに書くことはありません）。"),
    Message("C816", E, "受信フォルダ内の {file} を読み取れません（{detail}）。",
            "フォルダ・ファイルの読み取り権限を確認してください。"),
    Message("C815", W, "{file} は OS やファイル共有が作る管理用のファイルで、提出ファイルではありません。",
            "削除して構いません。"),
    # --- A7xx: the annotated copy ---
    Message("A701", E, "指摘付きの写しの出力先（{file}）が元のファイルと同じです。",
            "元のファイルは変更しません。別のファイル名を指定してください。"),
    Message("A702", E, "「{file}」は読み取れないため、指摘付きの写しを作れません。", ""),
    Message("A703", E, "指摘付きの写し（{file}）を書き出せません（{detail}）。", "出力先を確認してください。"),
    Message("A704", E, "{file} は内部の構成（{detail}）を安全に編集できないため、指摘付きの写しを作りませんでした。",
            "指摘の内容は check の結果（画面または --json）で確認してください。"),
    # --- G6xx: generation input ---
    Message("G601", E, "記録 {record}: {field_label}（{field}）{problem}",
            "入力データを修正してから再度実行してください。"),
    # generate reports it once per year and template, naming the records it stopped (``records``).
    Message("G602", E, "{year}年度（{wareki}）の{rates_title}が単価ファイルにありません（{records}）。",
            "単価ファイル（--rates）に {year} 年度の {fields} を追加してください（書き方は README の「単価ファイル」）。"),
    Message("G603", E, "記録 {record}: {field_label}は{capacity}件までしか記入できません（{count}件あります）。",
            "件数を減らすか、テンプレートの定義を見直してください。"),
    Message("G604", W, "記録 {record}: {field_label}の{year}年度の値は、{fiscal_year}年度のシートの表示期間外のため記載しません。",
            ""),
    Message("G606", E, "記録 {record}: {other} と同じファイル名（{file}）になります。事業番号と事業名の組が重複しています。",
            "重複した記録を削除するか、事業番号を修正してください。"),
    Message("G607", E, "記録 {record}: テンプレート {file} を書き出せません（{detail}）。",
            "出力先の空き容量と書き込み権限を確認し、もう一度実行してください（書き出せた分はそのまま使えます）。"),
    Message("G605", W, "記録 {record}: {year}年度の{field_label}は報告値 {value} を固定値として記載します（{reason}）。",
            ""),
    Message("G610", E, "記録 {record}: 出力先に同じ名前のファイル（{file}）が既にあるため、作成しませんでした。",
            "上書きしてよい場合は --overwrite を付けて実行してください。提出されたファイルのある受信フォルダには出力しないでください。"),
    Message("G611", E, "記録 {record}: 出力先のファイル（{file}）は入力ファイルそのものなので、作成しませんでした（--overwrite でも上書きしません）。",
            "別の出力先フォルダを指定してください。"),
    # --- O9xx: where outputs go (checked before anything is written) ---
    Message("O901", E, "出力先の{output}（{output_path}）は、入力の{other}（{other_path}）と同じファイルです。",
            "入力を上書きしないよう、別の出力先を指定してください。何も書き出していません。"),
    Message("O902", E, "出力先の{output}（{output_path}）が、入力の{other}（{other_path}）の中にあります。",
            "提出されたファイルと混ざらないよう、受信フォルダの外を出力先に指定してください。何も書き出していません。"),
    Message("O903", E, "出力先の{output}（{output_path}）が、{other}（{other_path}）の中にあります。",
            "台帳フォルダ（受付台帳と保管ファイル）の中には出力できません。別の出力先を指定してください。何も書き出していません。"),
    Message("O904", E, "{output}（{output_path}）と{other}（{other_path}）が重なっています。",
            "受信フォルダと台帳フォルダは、どちらかがもう一方の中にならないよう別の場所にしてください。何も書き出していません。"),
    Message("O905", E, "出力先の{output}と{other}が同じファイル（{output_path}）です。",
            "それぞれ別のファイル名を指定してください。何も書き出していません。"),
    Message("O906", E, "出力先の{output}（{output_path}）に書き出すファイルが、入力の{other}（{other_path}）を上書きします。",
            "入力ファイルを別の場所に移すか、別の出力先を指定してください。何も書き出していません。"),
]

CATALOG: dict[str, Message] = {m.code: m for m in _MESSAGES}
