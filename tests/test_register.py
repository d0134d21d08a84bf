"""The issue register's index (signing.Register): read incrementally, rebuilt when the register
is rewritten, never ahead of a line still being written, and the same answers without it."""

from __future__ import annotations

import json
from pathlib import Path

from sheettool import signing


def _entry(no: str, signature: str, fy: int = 2024, template: str = "tsukuba") -> dict:
    return {"signature": signature, "key_id": "k", "template_id": template, "template_version": "1.0.0",
            "fiscal_year": fy, "project_no": no, "generated_at": "2024-04-01T00:00:00+09:00",
            "file": f"/out/{no}.xlsx", "issued_at": "2024-04-01T00:00:00+09:00"}


def _sig(n: int) -> str:
    return f"{n:064x}"


def _append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(lines))


def _line(entry: dict) -> str:
    return json.dumps(entry, ensure_ascii=False) + "\n"


def test_lines_added_later_are_found_by_the_next_run_and_broken_ones_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "key.issued.jsonl"
    # more than the 4 KB that identify the file, so later runs read only what was added
    _append(path, *(_line(_entry(f"{i:04d}", _sig(i))) for i in range(40)), "{broken\n")
    first = signing.Register.load(path)
    assert first.issued(_sig(3)) == ("tsukuba", 2024, "0003")
    assert first.issued(_sig(99)) is None
    assert first.broken == 1
    assert first.index_path.is_file() and first.index_path.stat().st_mode & 0o777 == 0o600
    _append(path, _line(_entry("0099", _sig(99).upper(), fy=2025)))
    second = signing.Register.load(path)
    assert second.issued(_sig(99)) == ("tsukuba", 2025, "0099")
    assert second.signed(("tsukuba", 2025, "0099")) and not second.signed(("tsukuba", 2025, "0003"))
    assert second.broken == 1  # the broken line was counted when it was read, not again


def test_a_line_still_being_written_is_left_for_the_next_run(tmp_path: Path) -> None:
    path = tmp_path / "key.issued.jsonl"
    _append(path, *(_line(_entry(f"{i:04d}", _sig(i))) for i in range(40)))
    whole = _line(_entry("0500", _sig(500)))
    _append(path, whole[:30])  # generate is writing it now
    assert signing.Register.load(path).issued(_sig(500)) is None
    _append(path, whole[30:])
    later = signing.Register.load(path)
    assert later.issued(_sig(500)) == ("tsukuba", 2024, "0500")
    assert later.broken == 0


def test_a_rewritten_register_is_indexed_anew(tmp_path: Path) -> None:
    path = tmp_path / "key.issued.jsonl"
    _append(path, *(_line(_entry(f"{i:04d}", _sig(i))) for i in range(40)))
    assert signing.Register.load(path).issued(_sig(7)) is not None
    path.write_text("".join(_line(_entry(f"{i:04d}", _sig(i + 1000))) for i in range(40)), encoding="utf-8")
    again = signing.Register.load(path)
    assert again.issued(_sig(7)) is None  # no longer in the register: never issued, as far as it says
    assert again.issued(_sig(1007)) == ("tsukuba", 2024, "0007")
    assert not again.signed(("tsukuba", 2024, "9999"))


def test_without_an_index_the_register_is_read_into_memory_with_the_same_answers(tmp_path: Path) -> None:
    path = tmp_path / "key.issued.jsonl"
    _append(path, *(_line(_entry(f"{i:04d}", _sig(i))) for i in range(40)), "[1, 2]\n", _line({"x": 1}))
    path.with_suffix(".sqlite").mkdir()  # no index can be made there
    register = signing.Register.load(path)
    assert register.issued(_sig(5)) == ("tsukuba", 2024, "0005")
    assert register.signed(("tsukuba", 2024, "0005"))
    assert register.issued(_sig(77)) is None
    assert register.broken == 2
    assert register._db is None and register._memory is not None
