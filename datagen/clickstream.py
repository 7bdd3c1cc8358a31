"""Clickstream events whose behaviour follows the users' latent traits.

Events follow the contract in :mod:`platform_core.schemas.clickstream`. Behaviour by trait:

- sessions per month grow with the month's latent activity (engagement, drifting with ``trend``),
  so at-risk users visibly slow down before they churn; users only browse logged in while
  subscribed;
- engaged users add titles to their list and buy (rent) titles more;
- unsatisfied users search more and visit help and cancellation pages, and rate titles lower;
- price-sensitive users visit the plans page;
- a subscriber who cancels goes through the cancellation pages just before the row flips, which
  is after the renewal's cutoff: features that see those pages are reading the future;
- a share of sessions are anonymous visitors (``user_id`` null), some of them crawlers.

All random draws are made in bulk with numpy up front and the loop only assembles dictionaries,
so 100,000 events take about a second.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from datagen.config import MONTH_DAYS, GeneratorConfig, rng_for
from datagen.population import DEVICES, Population
from datagen.subscriptions import SubscriptionHistory
from platform_core.schemas.clickstream import EVENT_TYPES

SITE = "https://www.streamflix.example"

USER_AGENTS: dict[str, tuple[str, ...]] = {
    "tv": (
        "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.5) AppleWebKit/537.36 (KHTML, like Gecko) "
        "85.0.4183.93/6.5 TV Safari/537.36",
        "Roku/DVP-12.5 (12.5.0.4178-46)",
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/87.0.4280.88 Safari/537.36 WebAppManager",
        "Mozilla/5.0 (Linux; Android 11; BRAVIA 4K VH2 Build/RTM6.230109.A.109) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/108.0.0.0 Safari/537.36",
    ),
    "web": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    ),
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.81 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.0.0 Mobile Safari/537.36",
    ),
    "tablet": (
        "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.6 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.0.0 Safari/537.36",
    ),
}
CRAWLER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
)
EXTERNAL_REFERRERS: tuple[str | None, ...] = (
    None,
    None,
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://www.facebook.com/",
    "https://t.co/",
    "https://mail.example.com/",
)
GENRES = ("drama", "comedy", "thriller", "documentary", "kids", "anime", "sci-fi", "romance")
SEARCH_TERMS = ("stranger", "crown", "documentary", "new releases", "comedy special", "anime", "cancel", "price")
SUPPORT_PATHS = ("/help", "/help/cancel-subscription", "/help/billing", "/account/cancel", "/account")
PLANS_PATHS = ("/plans", "/account/change-plan")
# The pages of a cancellation, in order: (event type, method, path).
CANCEL_FLOW: tuple[tuple[str, str, str], ...] = (
    ("page_view", "GET", "/account"),
    ("page_view", "GET", "/account/cancel"),
    ("click", "POST", "/account/cancel/confirm"),
)
_PUBLIC_FIRST_OCTETS = (24, 31, 50, 67, 73, 81, 92, 98, 104, 109, 151, 174, 185, 203)
_TIME_OFFSETS = (timezone(timedelta(hours=1)), timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30)))

# What a session does after its landing page, in this order (sign_in/sign_out are added around it).
_ACTIONS: tuple[str, ...] = (
    "page_view",
    "click",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "api_request",
    "voice_command",
)
_BASE_WEIGHTS = np.array([0.34, 0.28, 0.08, 0.05, 0.015, 0.02, 0.12, 0.0])
_ANONYMOUS_WEIGHTS = np.array([0.6, 0.25, 0.15, 0.0, 0.0, 0.0, 0.0, 0.0])
_MEAN_EXTRA_EVENTS = 4.0  # a session is a landing page plus Poisson(4) more events
_SESSION_ACTIVITY_SLOPE = 0.8  # log-rate of sessions per unit of latent activity
assert set(_ACTIONS) | {"sign_in", "sign_out"} <= EVENT_TYPES


@dataclass(frozen=True)
class _Sessions:
    """Column arrays, one entry per session; ``who`` is -1 for anonymous visitors, and
    ``cancels`` marks the session in which a subscriber cancels."""

    who: np.ndarray
    start_ms: np.ndarray
    length: np.ndarray
    cancels: np.ndarray


def generate_clickstream(
    config: GeneratorConfig, population: Population, history: SubscriptionHistory
) -> list[dict[str, Any]]:
    """Every event of the window (from one month before ``config.start`` to its end), by time."""
    rng = rng_for(config.seed, "clickstream")
    sessions = _sessions(config, population, history, rng)
    return _events(config, population, sessions, rng)


def clickstream_window(config: GeneratorConfig) -> tuple[datetime, datetime]:
    """Events start one month before the window so that the first cutoffs have a history."""
    return config.start_time - timedelta(days=MONTH_DAYS), config.end_time


@dataclass(frozen=True)
class _Pieces:
    """Stretches of time in which one user is subscribed within one month of latent activity."""

    who: np.ndarray
    start_ms: np.ndarray
    end_ms: np.ndarray
    rate: np.ndarray  # relative session rate: exp(slope * activity) x the stretch's share of a month


def _activity_pieces(config: GeneratorConfig, population: Population, history: SubscriptionHistory) -> _Pieces:
    window_start, window_end = clickstream_window(config)
    month_ms = MONTH_DAYS * 86400_000
    origin_ms = config.start_time.timestamp() * 1000
    who: list[int] = []
    starts: list[float] = []
    ends: list[float] = []
    rates: list[float] = []
    for i, user_id in enumerate(population.user_ids):
        for begin, finish in history.active_intervals.get(user_id, []):
            lo = max(begin, window_start).timestamp() * 1000
            hi = min(finish, window_end).timestamp() * 1000
            month = math.floor((lo - origin_ms) / month_ms)
            while lo < hi:
                month_end = min(hi, origin_ms + (month + 1) * month_ms)
                activity = population.activity(i, max(-1, min(config.months, month)))
                who.append(i)
                starts.append(lo)
                ends.append(month_end)
                rates.append(math.exp(_SESSION_ACTIVITY_SLOPE * activity) * (month_end - lo) / month_ms)
                lo = month_end
                month += 1
    return _Pieces(np.asarray(who, dtype=np.int64), np.asarray(starts), np.asarray(ends), np.asarray(rates))


def _sessions(
    config: GeneratorConfig, population: Population, history: SubscriptionHistory, rng: np.random.Generator
) -> _Sessions:
    window_start, window_end = clickstream_window(config)
    pieces = _activity_pieces(config, population, history)
    rate = pieces.rate
    # Scale so that the expected number of logged-in events per user is ``events_per_user``.
    events_per_session = 1.0 + _MEAN_EXTRA_EVENTS
    total = float(rate.sum()) * events_per_session
    scale = config.events_per_user * len(population) / total if total > 0 else 0.0
    counts = rng.poisson(rate * scale)
    piece = np.repeat(np.arange(len(counts)), counts)
    lo_arr, hi_arr = pieces.start_ms[piece], pieces.end_ms[piece]
    start_ms = lo_arr + rng.random(len(piece)) * (hi_arr - lo_arr)
    who_arr = pieces.who[piece]

    share = config.anonymous_session_share
    n_anonymous = int(rng.poisson(len(piece) * share / (1 - share))) if share > 0 else 0
    anonymous_start = window_start.timestamp() * 1000 + rng.random(n_anonymous) * (
        (window_end - window_start).total_seconds() * 1000
    )
    cancel_who, cancel_start = _cancellation_sessions(population, history, rng)
    who_all = np.concatenate([who_arr, np.full(n_anonymous, -1, dtype=np.int64), cancel_who])
    start_all = np.concatenate([start_ms, anonymous_start, cancel_start]).astype(np.int64)
    length = 1 + rng.poisson(_MEAN_EXTRA_EVENTS, len(who_all))
    cancels = np.arange(len(who_all)) >= len(who_all) - len(cancel_who)
    length[cancels] = len(CANCEL_FLOW)
    # Sessions must end inside the window: leave them room (a session lasts minutes, not hours).
    start_all = np.minimum(start_all, int(window_end.timestamp() * 1000) - 3600_000)
    return _Sessions(who=who_all, start_ms=start_all, length=length, cancels=cancels)


def _cancellation_sessions(
    population: Population, history: SubscriptionHistory, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A session through the cancellation pages for every cancellation, ending as the row flips.

    Cancellations happen after the renewal's cutoff (see :mod:`datagen.subscriptions`) and these
    sessions start less than a minute before, so they are after the cutoff too: a feature job
    that counted them would be reading the label (and its model would beat the oracle).
    """
    index = {user: i for i, user in enumerate(population.user_ids)}
    moments = [
        (index[c.user_id], c.time.timestamp() * 1000)
        for c in history.changes
        if c.operation == "update" and c.before is not None
        and c.before["is_active_subscribed"] and not c.row["is_active_subscribed"]
    ]  # fmt: skip
    who = np.asarray([m[0] for m in moments], dtype=np.int64)
    starts = np.asarray([m[1] for m in moments], dtype=float) - rng.uniform(10_000, 55_000, len(moments))
    return who, starts


def _action_weights(population: Population) -> np.ndarray:
    """Cumulative probabilities of each follow-up action, per user (last row: anonymous)."""
    n = len(population)
    weights = np.tile(_BASE_WEIGHTS, (n + 1, 1))
    e, s = population.engagement, population.satisfaction
    weights[:n, _ACTIONS.index("search")] *= np.exp(-0.5 * s)
    weights[:n, _ACTIONS.index("add_to_cart")] *= np.exp(0.4 * e)
    weights[:n, _ACTIONS.index("purchase")] *= np.exp(0.6 * e)
    is_tv = np.array([d == "tv" for d in population.device])
    weights[:n, _ACTIONS.index("voice_command")] = np.where(is_tv, 0.06, 0.0)
    weights[n] = _ANONYMOUS_WEIGHTS
    weights /= weights.sum(axis=1, keepdims=True)
    return np.cumsum(weights, axis=1)


def _page_odds(population: Population) -> tuple[np.ndarray, np.ndarray]:
    """Per user (last row: anonymous), the chance a page view is a help page, and a plans page."""
    support = np.append(0.04 * np.exp(-0.9 * population.satisfaction), 0.03)
    plans = np.append(0.03 * np.exp(0.9 * population.price_sensitivity), 0.15)
    return np.minimum(support, 0.6), np.minimum(plans, 0.6)


def _events(
    config: GeneratorConfig, population: Population, sessions: _Sessions, rng: np.random.Generator
) -> list[dict[str, Any]]:
    n_sessions = len(sessions.who)
    n = len(population)
    # Which session each event belongs to, and its position in it.
    session_of = np.repeat(np.arange(n_sessions), sessions.length)
    n_events = len(session_of)
    first_of_session = np.concatenate([[0], np.cumsum(sessions.length)[:-1]]).astype(np.int64)
    position = np.arange(n_events) - first_of_session[session_of]
    who = sessions.who[session_of]
    row = np.where(who >= 0, who, n)  # the anonymous visitors' traits are the last row

    # Event times: the session start plus exponential gaps (an event every ~40 s).
    gaps = rng.exponential(40_000, n_events).astype(np.int64) + 500
    elapsed = np.cumsum(gaps) - gaps
    time_ms = sessions.start_ms[session_of] + elapsed - elapsed[first_of_session[session_of]]

    kinds = _event_kinds(population, sessions, rng, session_of=session_of, position=position, row=row)
    support_odds, plans_odds = _page_odds(population)
    page_u = rng.random(n_events)
    pick = rng.integers(0, 1_000_000, n_events)
    latency = np.round(rng.lognormal(np.log(45.0), 0.6, n_events), 2)
    status_u = rng.random(n_events)
    satisfaction = np.append(population.satisfaction, 0.0)[row]
    rating = np.clip(np.round(3.4 + 0.6 * satisfaction + rng.normal(0, 0.8, n_events)), 1, 5).astype(int)
    event_ids = _uuid_strings(rng, n_events, dashes=True)
    contexts = _session_contexts(config, population, sessions, rng)
    iso_times = np.datetime_as_string(time_ms.astype("datetime64[ms]"), unit="ms")

    referrer_pick = rng.integers(0, len(EXTERNAL_REFERRERS), n_sessions).tolist()
    page_u_l, pick_l, rating_l = page_u.tolist(), pick.tolist(), rating.tolist()
    support_l, plans_l = support_odds[row].tolist(), plans_odds[row].tolist()
    latency_l, status_l, time_l = latency.tolist(), status_u.tolist(), time_ms.tolist()
    session_l, position_l, kinds_l = session_of.tolist(), position.tolist(), kinds.tolist()
    cancels_l = sessions.cancels.tolist()

    events: list[dict[str, Any]] = []
    previous_path = ""
    for e in range(n_events):
        k = session_l[e]
        context = contexts[k]
        kind = kinds_l[e]
        if cancels_l[k]:
            _, method, path = CANCEL_FLOW[position_l[e]]
            query, properties = None, {"page": "cancel"}
        else:
            method, path, query, properties = _request_for(
                kind,
                page_u=page_u_l[e],
                support=support_l[e],
                plans=plans_l[e],
                pick=pick_l[e],
                rating=rating_l[e],
                first=position_l[e] == 0,
            )
        properties["device"] = context.device
        referrer = EXTERNAL_REFERRERS[referrer_pick[k]] if position_l[e] == 0 else f"{SITE}{previous_path}"
        previous_path = path
        events.append(
            {
                "event_id": event_ids[e],
                "event_time": context.time(time_l[e], iso_times[e]),
                "event_type": kind,
                "session_id": context.session_id,
                "user_id": context.user_id,
                "user_agent": context.user_agent,
                "ip": context.ip,
                "referrer": referrer,
                "request": {
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": _status(kind, status_l[e]),
                    "latency_ms": latency_l[e],
                },
                "properties": properties,
            }
        )
    order = np.argsort(time_ms, kind="stable")
    return [events[j] for j in order.tolist()]


def _event_kinds(
    population: Population,
    sessions: _Sessions,
    rng: np.random.Generator,
    *,
    session_of: np.ndarray,
    position: np.ndarray,
    row: np.ndarray,
) -> np.ndarray:
    """The event type of every event: a landing page view, sign in/out around, actions between."""
    n_sessions, n_events = len(sessions.who), len(session_of)
    cumulative = _action_weights(population)
    u = rng.random(n_events)
    action = np.minimum((cumulative[row] <= u[:, None]).sum(axis=1), len(_ACTIONS) - 1)
    kinds = np.asarray(_ACTIONS, dtype=object)[action]
    logged_in = (sessions.who >= 0)[session_of]
    signs_in = (rng.random(n_sessions) < 0.15)[session_of]
    signs_out = (rng.random(n_sessions) < 0.1)[session_of]
    length = sessions.length[session_of]
    kinds[~logged_in & np.isin(kinds, ["add_to_cart", "remove_from_cart", "purchase", "voice_command"])] = "page_view"
    kinds[(position == 1) & signs_in & logged_in] = "sign_in"
    kinds[(position == length - 1) & signs_out & logged_in & (length > 2)] = "sign_out"
    kinds[position == 0] = "page_view"
    cancels = sessions.cancels[session_of]
    for step, (kind, _, _) in enumerate(CANCEL_FLOW):
        kinds[cancels & (position == step)] = kind
    return kinds


def _uuid_strings(rng: np.random.Generator, count: int, *, dashes: bool) -> list[str]:
    """Random version-4 UUIDs from the seeded generator (``uuid.uuid4`` would not be reproducible)."""
    high = rng.integers(0, 2**63, count, dtype=np.int64).astype(np.uint64)
    low = rng.integers(0, 2**63, count, dtype=np.int64).astype(np.uint64)
    high = (high & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x4000)  # version 4
    low = (low & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000)  # RFC 4122 variant
    hexes = [f"{h:016x}{lo:016x}" for h, lo in zip(high.tolist(), low.tolist(), strict=True)]
    if not dashes:
        return hexes
    return [f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}" for x in hexes]


def _session_contexts(
    config: GeneratorConfig, population: Population, sessions: _Sessions, rng: np.random.Generator
) -> list[_SessionContext]:
    """Who is behind each session: ids, user agent, address, device and time format."""
    n_sessions, n = len(sessions.who), len(population)
    ua_pick = rng.random(n).tolist()  # one user agent per user, one address too
    ip_bits = rng.integers(0, 2**32, size=n, dtype=np.int64).tolist()
    ipv6 = (rng.random(n) < 0.12).tolist()
    anonymous_bits = rng.integers(0, 2**32, size=n_sessions, dtype=np.int64).tolist()
    anonymous_device = rng.integers(0, len(DEVICES), n_sessions).tolist()
    crawler = (rng.random(n_sessions) < 0.1).tolist()
    time_style = rng.random(n_sessions).tolist()
    session_ids = _uuid_strings(rng, n_sessions, dashes=False)
    contexts = []
    for k, i in enumerate(sessions.who.tolist()):
        if i < 0:
            device = DEVICES[anonymous_device[k]]
            agents = CRAWLER_AGENTS if crawler[k] else USER_AGENTS[device]
            user_agent = agents[anonymous_bits[k] % len(agents)]
            ip = _ip_address(anonymous_bits[k], v6=False)
            user_id = None
        else:
            device = population.device[i]
            agents = USER_AGENTS[device]
            user_agent = agents[int(ua_pick[i] * len(agents))]
            ip = _ip_address(ip_bits[i], v6=ipv6[i])
            user_id = population.user_ids[i]
        contexts.append(
            _SessionContext(
                session_id=session_ids[k],
                user_id=user_id,
                user_agent=user_agent,
                ip=ip,
                device=device,
                time_style=time_style[k],
                offset_share=config.offset_time_share,
                epoch_share=config.epoch_ms_time_share,
            )
        )
    return contexts


@dataclass(frozen=True)
class _SessionContext:
    session_id: str
    user_id: str | None
    user_agent: str
    ip: str
    device: str
    time_style: float
    offset_share: float
    epoch_share: float

    def time(self, time_ms: int, iso_utc: str) -> str | int:
        """ISO-8601 with a zone (mostly UTC ``Z``, a share with offsets) or, optionally, epoch ms."""
        if self.time_style < self.epoch_share:
            return time_ms
        if self.time_style < self.epoch_share + self.offset_share:
            zone = _TIME_OFFSETS[int(self.time_style * 1000) % len(_TIME_OFFSETS)]
            return datetime.fromtimestamp(time_ms / 1000, UTC).astimezone(zone).isoformat(timespec="milliseconds")
        return f"{iso_utc}Z"


def _request_for(
    kind: str, *, page_u: float, support: float, plans: float, pick: int, rating: int, first: bool
) -> tuple[str, str, str | None, dict[str, str]]:
    """HTTP method, path, query and properties of one event."""
    title = f"t-{pick % 5000:05d}"
    genre = GENRES[pick % len(GENRES)]
    if kind == "page_view":
        if page_u < support and not first:
            return "GET", SUPPORT_PATHS[pick % len(SUPPORT_PATHS)], None, {"page": "support"}
        if page_u < support + plans:
            return "GET", PLANS_PATHS[pick % len(PLANS_PATHS)], None, {"page": "plans"}
        browse = ("/", "/browse", f"/browse/genre/{genre}", f"/title/{title}", "/my-list")
        return "GET", browse[pick % len(browse)], None, {"page": "browse"}
    if kind == "click":
        if page_u < 0.15:
            return "POST", "/api/rating", None, {"title_id": title, "rating": str(rating)}
        return "GET", f"/watch/{title}", None, {"title_id": title, "genre": genre}
    if kind == "search":
        term = SEARCH_TERMS[pick % len(SEARCH_TERMS)]
        return "GET", "/search", f"q={term.replace(' ', '+')}", {"query": term}
    if kind == "add_to_cart":
        return "POST", "/api/my-list", None, {"title_id": title}
    if kind == "remove_from_cart":
        return "DELETE", f"/api/my-list/{title}", None, {"title_id": title}
    if kind == "purchase":
        amount = ("3.99", "4.99", "5.99", "19.99")[pick % 4]
        return "POST", "/api/purchase", None, {"title_id": title, "amount": amount, "currency": "USD"}
    if kind == "api_request":
        endpoints = ("/api/recommendations", "/api/continue-watching", "/api/profile", "/api/notifications")
        return "GET", endpoints[pick % len(endpoints)], None, {}
    if kind == "voice_command":
        return "POST", "/api/voice", None, {"utterance": f"play {genre}"}
    if kind == "sign_in":
        return "POST", "/login", None, {}
    return "POST", "/logout", None, {}


def _status(kind: str, u: float) -> int:
    if kind == "sign_in" and u < 0.05:
        return 401
    if u < 0.004:
        return 404
    if u < 0.007:
        return 500
    return 201 if kind in ("add_to_cart", "purchase") else 200


def _ip_address(bits: int, v6: bool) -> str:
    if v6:
        groups = [(bits >> shift) & 0xFFFF for shift in (0, 8, 16, 24)]
        return "2a02:" + ":".join(f"{g:x}" for g in groups) + "::" + f"{bits & 0xFF:x}"
    first = _PUBLIC_FIRST_OCTETS[bits % len(_PUBLIC_FIRST_OCTETS)]
    return f"{first}.{(bits >> 8) & 0xFF}.{(bits >> 16) & 0xFF}.{((bits >> 24) & 0xFF) or 1}"


def write_ndjson(path: Path, records: Iterable[Any]) -> int:
    """One JSON document per line (UTF-8); strings in ``records`` are written as they are."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(record if isinstance(record, str) else json.dumps(record, separators=(",", ":")))
            out.write("\n")
            count += 1
    return count
