"""Time-ordered UUIDs (version 7, RFC 9562), which Python 3.11's ``uuid`` module lacks.

Layout (128 bits, big-endian)::

    48 bits  unix_ts_ms   milliseconds since the Unix epoch
     4 bits  version      0b0111
    12 bits  rand_a       \\
     2 bits  variant      0b10   } 74 random bits around the variant
    62 bits  rand_b       /

Event ids sort by creation time, so the lake's dedup and any index keyed on them stay
append-friendly. Within one generator the ids are also strictly increasing when several are
made in the same millisecond (RFC 9562 method 2, "monotonic random": the 74 random bits are
incremented by a random amount instead of being redrawn).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable

_RANDOM_BITS = 74
_RANDOM_LIMIT = 1 << _RANDOM_BITS
_RAND_B_BITS = 62
_MAX_UNIX_MS = (1 << 48) - 1
# Increments within one millisecond stay far below 2**74, so ids cannot be guessed from a
# neighbour's yet overflow practically never happens.
_INCREMENT_BITS = 32


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _uuid7_int(unix_ms: int, random_bits: int) -> int:
    rand_a = random_bits >> _RAND_B_BITS
    rand_b = random_bits & ((1 << _RAND_B_BITS) - 1)
    return (unix_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b


def _canonical_text(value: int) -> str:
    """``str(uuid.UUID(int=value))`` without building the object (the producer's hot path)."""
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7_from_parts(unix_ms: int, random_bits: int) -> uuid.UUID:
    """The version-7 UUID with this timestamp and these 74 random bits."""
    if not 0 <= unix_ms <= _MAX_UNIX_MS:
        raise ValueError("unix_ms must fit in 48 bits")
    if not 0 <= random_bits < _RANDOM_LIMIT:
        raise ValueError("random_bits must fit in 74 bits")
    return uuid.UUID(int=_uuid7_int(unix_ms, random_bits))


def uuid7_unix_ms(value: uuid.UUID) -> int:
    """The millisecond timestamp a version-7 UUID carries."""
    return value.int >> 80


class Uuid7Generator:
    """Makes version-7 UUIDs that strictly increase within this generator (thread-safe).

    ``clock_ms`` and ``random_bits`` are injectable so tests can pin time and randomness.
    """

    def __init__(
        self,
        clock_ms: Callable[[], int] = _now_ms,
        random_bits: Callable[[int], int] = secrets.randbits,
    ) -> None:
        self._clock_ms = clock_ms
        self._random_bits = random_bits
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def __call__(self) -> uuid.UUID:
        return uuid.UUID(int=self._next_int())

    def text(self) -> str:
        """The next id in its canonical 36-character form."""
        return _canonical_text(self._next_int())

    def _next_int(self) -> int:
        with self._lock:
            now = self._clock_ms()
            if now > self._last_ms:
                self._last_ms, self._last_random = now, self._random_bits(_RANDOM_BITS)
            else:
                # Same millisecond, or the clock stepped back: stay on the last timestamp and
                # move forward, so ordering survives NTP corrections.
                following = self._last_random + 1 + self._random_bits(_INCREMENT_BITS)
                if following >= _RANDOM_LIMIT:
                    self._last_ms, following = self._last_ms + 1, self._random_bits(_RANDOM_BITS)
                self._last_random = following
            if self._last_ms > _MAX_UNIX_MS:
                raise ValueError("the clock is past the year 10889, beyond UUIDv7's 48-bit timestamp")
            return _uuid7_int(self._last_ms, self._last_random)


_default_generator = Uuid7Generator()


def uuid7() -> uuid.UUID:
    """A new version-7 UUID from the process-wide generator (ordered within this process)."""
    return _default_generator()


def uuid7_text() -> str:
    """A new version-7 UUID as its canonical string, e.g. ``018cc251-f400-7abc-9def-0123456789ab``."""
    return _default_generator.text()
