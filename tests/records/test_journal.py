"""The journal: durable appends, ordered reads, torn and corrupt lines skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.records.journal import Journal, decode, encode, main


def test_append_then_read_in_order_from_any_whole_line(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    assert j.append([{"key": "a", "n": 1}, {"key": "b", "n": 2}]) == 2
    assert j.append([{"key": "c", "text": "客服中心001号"}]) == 1
    entries = j.read_all()
    assert [r["key"] for r in entries.records] == ["a", "b", "c"]
    assert entries.records[2]["text"] == "客服中心001号"
    first = j.read(j.current, 0, 10)  # less than a line: the whole line all the same
    assert [r["key"] for r in first.records] == ["a"] and not first.eof
    rest = j.read(j.current, first.end, 1 << 20)
    assert [r["key"] for r in rest.records] == ["b", "c"] and rest.eof and rest.tail == 0


def test_a_new_process_finds_what_the_last_one_left(tmp_path: Path) -> None:
    Journal(tmp_path).append([{"key": "left-behind"}])
    j = Journal(tmp_path)
    assert [r["key"] for r in j.read_all().records] == ["left-behind"]
    assert j.next_number() == 2  # the next run's appender starts a segment after it


def test_torn_last_line_and_corrupt_line_are_skipped_not_raised(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append([{"key": "a"}, {"key": "b"}, {"key": "c"}])
    path = j.current
    data = path.read_bytes()
    lines = data.split(b"\n")
    lines[1] = lines[1].replace(b'"b"', b'"B"')  # a flipped byte: checksum mismatch
    torn = encode({"key": "d"})[:-7]  # a crash in the middle of a write
    path.write_bytes(b"\n".join(lines) + torn)
    entries = Journal(tmp_path).read_all()
    assert [r["key"] for r in entries.records] == ["a", "c"]
    assert (entries.torn, entries.corrupt) == (1, 1)


def test_size_is_reported(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    assert j.size_bytes() == 0
    j.append([{"key": "x" * 100}])
    assert j.size_bytes() > 100


@given(st.binary(max_size=300))
def test_decode_never_raises(data: bytes) -> None:
    decode(data)


@given(
    st.dictionaries(
        st.text(max_size=10), st.one_of(st.integers(), st.text(), st.none()), max_size=5
    )
)
def test_round_trip(record: dict) -> None:
    assert decode(encode(record)[:-1]) == record


def test_a_lone_surrogate_is_journaled_and_read_back(tmp_path: Path) -> None:
    """Text with no UTF-8 form (a lone surrogate) does not fail the append."""
    j = Journal(tmp_path)
    text = "x" + chr(0xD800) + "客服"
    assert j.append([{"key": "s", "text": text}]) == 1
    assert j.read_all().records == [{"key": "s", "text": text}]


def rejection(key: str, **event: object) -> dict[str, object]:
    return {
        "at": "2025-11-23T12:13:20+00:00",
        "error": "CheckViolationError",
        "sqlstate": "23514",
        "message": "new row violates check constraint",
        "detail": None,
        "record": {"key": key, "kind": "CallAbandoned", "at": 1.0, "event": event},
    }


def test_set_aside_then_requeue_puts_the_fixed_records_back_in_order(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal")
    assert j.set_aside([rejection("b:1", rings=0), rejection("b:2", text="\x00")]) == 2
    assert j.set_aside([rejection("b:1", rings=0)]) == 1  # set aside again by a rewrite
    assert j.rejected.parent == j.directory and j.segments() == []
    # The operator moves the file away, fixes it, and requeues it.
    fixed = tmp_path / "fixed.jsonl"
    j.rejected.rename(fixed)
    lines = [json.loads(line) for line in fixed.read_text().splitlines()]
    assert lines[1]["record"]["event"]["text"] == "\x00"
    for line in lines:
        line["record"]["event"] = {"rings": 1}
    fixed.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    assert main(["requeue", str(fixed), str(j.directory)]) == 0
    records = Journal(j.directory).read_all().records
    assert [(r["key"], r["event"]) for r in records] == [("b:1", {"rings": 1}), ("b:2", {"rings": 1})]


def test_requeue_of_a_file_that_is_not_rejections_appends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    j = Journal(tmp_path / "journal")
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps(rejection("b:1")) + "\n" + '{"key": "b:2"}\n')
    with pytest.raises(ValueError, match=r"wrong\.jsonl:2"):
        j.requeue(wrong)
    assert j.segments() == []
    assert main(["requeue", str(wrong), str(j.directory)]) == 1
    assert "wrong.jsonl:2: not a rejected record" in capsys.readouterr().err
