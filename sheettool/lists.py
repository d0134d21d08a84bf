"""Choice lists shown as dropdowns, and the SDG goal names."""

from __future__ import annotations

import re

SDG_GOALS: dict[int, str] = {
    1: "貧困をなくそう",
    2: "飢餓をゼロに",
    3: "すべての人に健康と福祉を",
    4: "質の高い教育をみんなに",
    5: "ジェンダー平等を実現しよう",
    6: "安全な水とトイレを世界中に",
    7: "エネルギーをみんなに そしてクリーンに",
    8: "働きがいも経済成長も",
    9: "産業と技術革新の基盤をつくろう",
    10: "人や国の不平等をなくそう",
    11: "住み続けられるまちづくりを",
    12: "つくる責任 つかう責任",
    13: "気候変動に具体的な対策を",
    14: "海の豊かさを守ろう",
    15: "陸の豊かさも守ろう",
    16: "平和と公正をすべての人に",
    17: "パートナーシップで目標を達成しよう",
}

YES, NO = "有", "無"
SCORE_CHOICES = ("1", "2", "3", "4", "5", "-")


def sdg_label(goal: int) -> str:
    """'09産業と技術革新の基盤をつくろう', as the published sheet prints it."""
    return f"{goal:02d}{SDG_GOALS[goal]}"


SDG_LABELS = tuple(sdg_label(g) for g in SDG_GOALS)

_SDG_NUMBER = re.compile(r"^\s*(?:(?:SDGs|目標|ゴール)\s*)?(\d{1,2})")


def parse_sdg(text: str) -> int | None:
    """Goal number from '09産業と…', '9', '目標9'; None when there is none in 1–17."""
    m = _SDG_NUMBER.match(text)
    if m and 1 <= int(m.group(1)) <= 17:
        return int(m.group(1))
    for goal, name in SDG_GOALS.items():
        if text.strip() == name:
            return goal
    return None
