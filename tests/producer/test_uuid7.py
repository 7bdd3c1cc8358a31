"""UUIDv7 event ids: layout, time order, monotonic within a millisecond."""

from __future__ import annotations

import itertools
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer.uuid7 import Uuid7Generator, uuid7, uuid7_from_parts, uuid7_text, uuid7_unix_ms


@given(st.integers(min_value=0, max_value=2**48 - 1), st.integers(min_value=0, max_value=2**74 - 1))
def test_layout_is_rfc_9562_version_7(unix_ms: int, random_bits: int) -> None:
    value = uuid7_from_parts(unix_ms, random_bits)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert uuid7_unix_ms(value) == unix_ms
    # The 74 random bits sit in rand_a (12) and rand_b (62), around the version and variant.
    assert ((value.int >> 64) & 0xFFF, value.int & (2**62 - 1)) == (
        random_bits >> 62,
        random_bits & (2**62 - 1),
    )


def test_hand_checked_value() -> None:
    # 2024-01-01T00:00:00Z = 1704067200000 ms = 0x018cc251f400; all random bits set
    assert str(uuid7_from_parts(1_704_067_200_000, 2**74 - 1)) == "018cc251-f400-7fff-bfff-ffffffffffff"


def test_ids_follow_the_clock() -> None:
    ticks = iter([1_000, 1_000, 2_000, 3_000])
    generate = Uuid7Generator(clock_ms=lambda: next(ticks))
    ids = [generate() for _ in range(4)]
    assert [uuid7_unix_ms(i) for i in ids] == [1_000, 1_000, 2_000, 3_000]
    assert ids == sorted(ids)


def test_ids_increase_within_one_millisecond_and_when_the_clock_steps_back() -> None:
    # Given a clock frozen at one instant, then stepping back a second
    now = [5_000_000]
    generate = Uuid7Generator(clock_ms=lambda: now[0])

    # When many ids are made
    ids = [generate() for _ in range(5_000)]
    now[0] -= 1_000
    ids += [generate() for _ in range(10)]

    # Then they strictly increase and all keep the latest timestamp seen
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert {uuid7_unix_ms(i) for i in ids} == {5_000_000}


def test_random_bits_overflow_moves_to_the_next_millisecond() -> None:
    draws = iter([2**74 - 2, 5, 123])  # first id near the top; the increment overflows
    generate = Uuid7Generator(clock_ms=lambda: 7, random_bits=lambda _bits: next(draws))
    first, second = generate(), generate()
    assert (uuid7_unix_ms(first), uuid7_unix_ms(second)) == (7, 8)
    assert first < second


def test_default_ids_are_unique_and_current() -> None:
    ids = [uuid7() for _ in range(1_000)]
    assert len(set(ids)) == 1_000
    assert ids == sorted(ids)
    assert uuid7_unix_ms(ids[0]) > 1_704_067_200_000  # after 2024-01-01


@pytest.mark.parametrize(("unix_ms", "bits"), [(-1, 0), (2**48, 0), (0, -1), (0, 2**74)])
def test_out_of_range_parts_are_refused(unix_ms: int, bits: int) -> None:
    with pytest.raises(ValueError):
        uuid7_from_parts(unix_ms, bits)


def test_text_form_is_the_canonical_uuid_string() -> None:
    # Given two generators with the same clock and random source
    def make() -> Uuid7Generator:
        draws = iter([0x2A5_0123_4567_89AB_CDEF, 17])
        return Uuid7Generator(clock_ms=lambda: 1_704_067_200_000, random_bits=lambda _bits: next(draws))

    as_objects, as_text = make(), make()

    # Then the text form equals str() of the UUID, id for id
    assert [as_text.text() for _ in range(2)] == [str(as_objects()) for _ in range(2)]


def test_default_text_ids_parse_as_version_7() -> None:
    assert uuid.UUID(uuid7_text()).version == 7
