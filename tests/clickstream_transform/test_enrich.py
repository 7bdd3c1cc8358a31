"""Enrichment: user-agent parsing, IP protection, referrer host."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest

from platform_core.enrich import (
    MAX_PARSED_UA_CHARS,
    UserAgentInfo,
    hashing_protector,
    ip_protector,
    keep_ip,
    referrer_host,
    truncate_ip,
    user_agent_info,
)

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            UserAgentInfo("Chrome", "124", "Windows", "Other", False),
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
            UserAgentInfo("Mobile Safari", "17", "iOS", "iPhone", False),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
            UserAgentInfo("Edge", "124", "Windows", "Other", False),
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
            UserAgentInfo("Firefox", "125", "Mac OS X", "Mac", False),
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.6367.113 Mobile Safari/537.36",
            UserAgentInfo("Chrome Mobile", "124", "Android", "Pixel 8", False),
        ),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            UserAgentInfo("Googlebot", "2", "Other", "Spider", True),
        ),
        (
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            UserAgentInfo("bingbot", "2", "Other", "Spider", True),
        ),
        ("something nobody knows", UserAgentInfo("Other", None, "Other", "Other", False)),
    ],
    ids=[
        "chrome-windows",
        "safari-iphone",
        "edge",
        "firefox-mac",
        "chrome-android",
        "googlebot",
        "bingbot",
        "unknown",
    ],
)
def test_real_user_agents_are_parsed(user_agent: str, expected: UserAgentInfo) -> None:
    assert user_agent_info(user_agent) == expected


def test_voice_assistant_user_agent_is_a_device_not_a_bot() -> None:
    info = user_agent_info("Dalvik/2.1.0 (Linux; U; Android 9; AEOBC Build/PS7624) AlexaMediaPlayer/2.1.4574.0")
    assert info.os == "Android"
    assert info.is_bot is False


def test_a_huge_user_agent_is_parsed_by_its_head_only() -> None:
    head = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    huge = head + " " + "x" * (MAX_PARSED_UA_CHARS * 20)
    assert user_agent_info(huge).is_bot is True


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("10.1.2.3", "10.1.2.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("2001:0DB8:0001:FFFF::1", "2001:db8:1::"),
        ("fe80::1%eth0", "fe80::"),
        ("::ffff:198.51.100.23", "198.51.100.0"),
    ],
)
def test_truncation_keeps_only_the_network(address: str, truncated: str) -> None:
    assert truncate_ip(address) == truncated


def test_hash_is_keyed_hmac_sha256_of_the_packed_address() -> None:
    protect = hashing_protector(KEY)

    digest = protect("203.0.113.77")

    assert digest == hmac.new(KEY, ipaddress.ip_address("203.0.113.77").packed, hashlib.sha256).hexdigest()
    # Another key gives another digest: without the key, nobody can rebuild the mapping.
    assert hashing_protector(b"another key of 32 bytes........")("203.0.113.77") != digest


def test_hash_is_the_same_for_every_spelling_of_an_address() -> None:
    protect = hashing_protector(KEY)
    assert protect("2001:db8::1") == protect("2001:0DB8:0:0::0001")
    assert protect("::ffff:203.0.113.77") == protect("203.0.113.77")
    assert protect("203.0.113.77") != protect("203.0.113.78")


def test_short_hash_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        hashing_protector(b"short")


def test_protector_by_mode() -> None:
    assert ip_protector("none") is keep_ip
    assert ip_protector("truncate") is truncate_ip
    assert ip_protector("hash", key=KEY)("192.0.2.1") == hashing_protector(KEY)("192.0.2.1")
    with pytest.raises(ValueError, match="needs a key"):
        ip_protector("hash")


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://www.Google.com:443/search?q=x", "www.google.com"),
        ("http://user:pw@example.org/path", "example.org"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("http://[2001:db8::1]:8080/", "2001:db8::1"),
        ("/relative/path", None),
        ("not a url", None),
        ("http://[::1", None),
        ("", None),
    ],
)
def test_referrer_host(referrer: str, host: str | None) -> None:
    assert referrer_host(referrer) == host
