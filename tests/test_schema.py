"""The record schema: generated from the field tree, Japanese messages, the fast path agreeing."""

from __future__ import annotations

import copy

from helpers import TSUKUBA, seed_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEEDS = seed_records()
LEAVES = [
    ("fiscal_year",), ("project_no",), ("project_name",), ("status",), ("category",), ("direction",),
    ("sdgs",), ("mayor_pledge",), ("costs", 2, "budget"), ("costs", 0, "other"), ("costs", 1, "staff_fte"),
    ("costs", 3, "part_time_staff"), ("indicators", 0, "name"), ("indicators", 0, "values", 1, "target"),
    ("evaluation", "progress"), ("results", "achievements"), ("participation", "share"), ("template",),
]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**10, 10**10), st.floats(allow_nan=False),
                   st.text(max_size=30), st.lists(st.integers(-2, 20), max_size=4), st.just("継続"),
                   st.just("自治事務（任意）"), st.just("x" * 1001), st.just({}), st.just([]), st.just("tsukuba"))
VALIDATOR = TSUKUBA.validator


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(SEEDS))), st.sampled_from(LEAVES), VALUES)
def test_fast_path_agrees_with_jsonschema(index, leaf, value):
    record = copy.deepcopy(SEEDS[index])
    node = record
    for key in leaf[:-1]:
        node = node[key]
    node[leaf[-1]] = value
    assert VALIDATOR.is_valid(record) == VALIDATOR._full.is_valid(record)


def test_seed_records_are_valid():
    assert all(VALIDATOR.problems(r) == [] for r in SEEDS)


def test_messages_name_the_field_in_japanese():
    record = copy.deepcopy(SEEDS[0])
    record["costs"][2]["budget"] = -5
    record["evaluation"]["progress"] = 9
    problems = {p.path: p.label + p.problem for p in VALIDATOR.problems(record)}
    assert problems["costs.2022.budget"] == "令和4年度の予算額（千円）は0以上にしてください（現在 -5）。"
    assert problems["evaluation.progress"] == "評価の進捗状況は5以下にしてください（現在 9）。"
