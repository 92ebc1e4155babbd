"""The journal: durable appends, ordered replay, torn and corrupt lines skipped."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from callcenter.records.journal import Journal, decode, encode


def test_append_then_replay_in_order_then_commit_empties_it(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    assert j.append([{"key": "a", "n": 1}, {"key": "b", "n": 2}]) == 2
    assert j.append([{"key": "c", "text": "客服中心001号"}]) == 1
    entries = j.start_replay()
    assert [r["key"] for r in entries.records] == ["a", "b", "c"]
    assert entries.records[2]["text"] == "客服中心001号"
    # Written during the replay: kept for the next one.
    j.append([{"key": "d"}])
    j.commit_replay(entries)
    again = j.start_replay()
    assert [r["key"] for r in again.records] == ["d"]


def test_a_new_process_finds_what_the_last_one_left(tmp_path: Path) -> None:
    Journal(tmp_path).append([{"key": "left-behind"}])
    entries = Journal(tmp_path).start_replay()
    assert [r["key"] for r in entries.records] == ["left-behind"]


def test_torn_last_line_and_corrupt_line_are_skipped_not_raised(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append([{"key": "a"}, {"key": "b"}, {"key": "c"}])
    path = j.current
    data = path.read_bytes()
    lines = data.split(b"\n")
    lines[1] = lines[1].replace(b'"b"', b'"B"')  # a flipped byte: checksum mismatch
    torn = encode({"key": "d"})[:-7]  # a crash in the middle of a write
    path.write_bytes(b"\n".join(lines) + torn)
    entries = Journal(tmp_path).start_replay()
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
