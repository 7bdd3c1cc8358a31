"""Enrichment of a validated clickstream event: user agent, IP protection, referrer host.

Everything here is pure and memoised on the raw string: real traffic repeats a small set of user
agents, a session repeats its IP address and a site its referrers, so almost every call is a
dictionary lookup.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import ua_parser

from platform_core.config import IpProtection

# Parsing is regex work proportional to the length; real user agents stay well under this, and a
# multi-kilobyte header must not cost the whole batch its time budget.
MAX_PARSED_UA_CHARS = 1024
# ua-parser (uap-core) marks crawlers with this device family.
_SPIDER = "Spider"
_CACHE_SIZE = 8192


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    browser: str | None
    browser_version: str | None
    os: str | None
    device: str | None
    is_bot: bool | None


# No header, no knowledge: every field null rather than "Other" (which means "parsed, not known").
UNKNOWN_USER_AGENT = UserAgentInfo(None, None, None, None, None)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def user_agent_info(user_agent: str) -> UserAgentInfo:
    """Browser family and major version, OS family, device family and whether it is a crawler.

    ``ua_parser.parse`` goes through the library's own cached parser (built lazily on first use);
    the lru_cache in front of it avoids even that lookup and the result conversion.
    """
    result = ua_parser.parse(user_agent[:MAX_PARSED_UA_CHARS]).with_defaults()
    return UserAgentInfo(
        browser=result.user_agent.family,
        browser_version=result.user_agent.major,
        os=result.os.family,
        device=result.device.family,
        is_bot=result.device.family == _SPIDER,
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def referrer_host(referrer: str) -> str | None:
    """The lower-cased host of a referrer URL (no port, no credentials); None if it has none."""
    try:
        return urlsplit(referrer.strip()).hostname or None
    except ValueError:  # e.g. an unbalanced IPv6 bracket: a bad referrer is not a bad event
        return None


# ---------------------------------------------------------------------------------------------
# IP protection
# ---------------------------------------------------------------------------------------------

IpProtector = Callable[[str], str]
"""Maps a valid IPv4/IPv6 address text to what the lake may store."""

_IPV4_KEEP = 24
_IPV6_KEEP = 48
_IPV4_MASK = ((1 << _IPV4_KEEP) - 1) << (32 - _IPV4_KEEP)
_IPV6_MASK = ((1 << _IPV6_KEEP) - 1) << (128 - _IPV6_KEEP)
MIN_HASH_KEY_BYTES = 16


def _unmapped(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address, with an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) treated as IPv4.

    Dual-stack servers report IPv4 clients in mapped form; treating both forms alike keeps one
    client's truncated or hashed address the same whichever socket it came through.
    """
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def keep_ip(text: str) -> str:
    """``none``: store the address as sent."""
    return text


@functools.lru_cache(maxsize=_CACHE_SIZE)
def truncate_ip(text: str) -> str:
    """``truncate``: keep the network (IPv4 /24, IPv6 /48), zero the host part."""
    address = _unmapped(text)
    if isinstance(address, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(address) & _IPV4_MASK))
    # Rebuilt from the integer, so any %zone suffix is gone too.
    return str(ipaddress.IPv6Address(int(address) & _IPV6_MASK))


def hashing_protector(key: bytes) -> IpProtector:
    """``hash``: HMAC-SHA256 of the address's packed bytes (network order) under ``key``, as hex.

    Packed bytes rather than text, so the digest does not depend on how a Python version prints
    addresses; with the key kept secret, nobody can recover an address by hashing all 2^32 IPv4s.
    """
    if len(key) < MIN_HASH_KEY_BYTES:
        raise ValueError(f"the IP hash key must be at least {MIN_HASH_KEY_BYTES} bytes")

    @functools.lru_cache(maxsize=_CACHE_SIZE)
    def hash_ip(text: str) -> str:
        return hmac.digest(key, _unmapped(text).packed, "sha256").hex()

    return hash_ip


def ip_protector(mode: IpProtection, *, key: bytes | None = None) -> IpProtector:
    """The protector for a configured mode; ``hash`` needs the key."""
    if mode == "none":
        return keep_ip
    if mode == "truncate":
        return truncate_ip
    if mode == "hash":
        if key is None:
            raise ValueError("IP protection 'hash' needs a key")
        return hashing_protector(key)
    raise ValueError(f"unknown IP protection {mode!r}; expected truncate, hash or none")
