"""Random ids for tags, branches and Call-IDs: 64 bits each, read in blocks."""

from __future__ import annotations

import os

from callcenter.ids import RandomIds as _RandomIds


def test_ids_are_64_random_bits_unique_across_blocks() -> None:
    new_id = _RandomIds()
    ids = [new_id() for _ in range(2_000)]  # four blocks of 512
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == len(ids)
    # Each bit is set about half the time (a block reused or zeroed would not be).
    ones = sum(bin(int(i, 16)).count("1") for i in ids)
    assert 0.45 < ones / (64 * len(ids)) < 0.55


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id = _RandomIds()
    new_id()  # the parent has a block in hand
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out without the test runner's exit
        try:
            os.write(write, "".join(new_id() for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 1024).decode()
    os.close(read)
    parent = "".join(new_id() for _ in range(4))
    assert len(child) == len(parent) == 64 and child != parent
