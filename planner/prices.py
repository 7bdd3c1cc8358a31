"""Prices are data: ``planner/prices/<region>.json``, each price with its unit, source and how sure we are.

A price file looks like::

    {"region": "us-east-1", "currency": "USD", "read_on": "2026-11-30",
     "prices": {"kinesis.provisioned.shard_hour": {"value": 0.015, "unit": "USD per shard-hour",
                "source": "https://aws.amazon.com/kinesis/data-streams/pricing/",
                "read_via": "...", "confidence": "confirmed"}, ...},
     "tiers": {"firehose.ingestion": [{"up_to_gb": 512000, "usd_per_gb": 0.029, ...}, ...]}}

``confidence`` is ``confirmed`` (a source names this region and this price), ``secondary`` (a
source gives the price without naming the region, or is older) or ``unconfirmed`` (no source was
found: a placeholder, named as such in every plan that uses it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

PRICES_DIR = Path(__file__).resolve().parent / "prices"

Confidence = Literal["confirmed", "secondary", "unconfirmed"]
_CONFIDENCES: tuple[Confidence, ...] = ("confirmed", "secondary", "unconfirmed")


@dataclass(frozen=True)
class Price:
    key: str
    value: float
    unit: str
    source: str
    read_via: str = ""
    confidence: Confidence = "confirmed"


@dataclass(frozen=True)
class Tier:
    """A price that applies to usage up to ``up_to_gb`` (cumulative, per month); None: no upper bound."""

    up_to_gb: float | None
    usd_per_gb: float


@dataclass(frozen=True)
class TieredPrice:
    key: str
    tiers: tuple[Tier, ...]
    unit: str
    source: str
    read_via: str = ""
    confidence: Confidence = "confirmed"

    def cost(self, gb: float) -> float:
        """The cost of ``gb`` in a month, each tier charging the part of the usage that falls in it."""
        total, floor = 0.0, 0.0
        for tier in self.tiers:
            ceiling = tier.up_to_gb if tier.up_to_gb is not None else float("inf")
            if gb > floor:
                total += (min(gb, ceiling) - floor) * tier.usd_per_gb
            floor = ceiling
        if gb > floor:
            raise ValueError(f"{gb:.0f} GB exceeds the last published tier of {self.key}")
        return total


@dataclass(frozen=True)
class PriceSheet:
    region: str
    currency: str
    read_on: str
    prices: Mapping[str, Price]
    tiered: Mapping[str, TieredPrice] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.price(key).value

    def price(self, key: str) -> Price:
        try:
            return self.prices[key]
        except KeyError:
            raise KeyError(f"{self.region} has no price {key!r} in planner/prices/{self.region}.json") from None

    def tier(self, key: str) -> TieredPrice:
        try:
            return self.tiered[key]
        except KeyError:
            raise KeyError(f"{self.region} has no tiered price {key!r}") from None

    def doubtful(self, keys: Sequence[str]) -> list[Price | TieredPrice]:
        """The prices among ``keys`` that are not confirmed for this region."""
        found: list[Price | TieredPrice] = []
        for key in keys:
            entry: Price | TieredPrice = self.tiered[key] if key in self.tiered else self.price(key)
            if entry.confidence != "confirmed":
                found.append(entry)
        return found


def available_regions(directory: Path = PRICES_DIR) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.json"))


def load_prices(region: str, directory: Path = PRICES_DIR) -> PriceSheet:
    path = directory / f"{region}.json"
    if not path.exists():
        known = ", ".join(available_regions(directory)) or "none"
        raise ValueError(f"no price file for region {region!r} (planner/prices/{region}.json); known: {known}")
    return parse_sheet(json.loads(path.read_text()))


def parse_sheet(raw: Mapping[str, Any]) -> PriceSheet:
    """A :class:`PriceSheet` from a price file's JSON, refusing entries without a source or unit."""
    prices = {key: _price(key, entry) for key, entry in raw["prices"].items()}
    tiered = {key: _tiered(key, entry) for key, entry in raw.get("tiers", {}).items()}
    return PriceSheet(raw["region"], raw.get("currency", "USD"), raw["read_on"], prices, tiered)


def _confidence(key: str, entry: Mapping[str, Any]) -> Confidence:
    value = entry.get("confidence", "confirmed")
    for known in _CONFIDENCES:
        if value == known:
            return known
    raise ValueError(f"{key}: confidence must be one of {', '.join(_CONFIDENCES)}")


def _require(key: str, entry: Mapping[str, Any], *names: str) -> None:
    missing = [n for n in names if not entry.get(n) and entry.get(n) != 0]
    if missing:
        raise ValueError(f"price {key!r} lacks {', '.join(missing)}: every price names its unit and source")


def _price(key: str, entry: Mapping[str, Any]) -> Price:
    _require(key, entry, "value", "unit", "source")
    return Price(
        key,
        float(entry["value"]),
        str(entry["unit"]),
        str(entry["source"]),
        str(entry.get("read_via", "")),
        _confidence(key, entry),
    )


def _tiered(key: str, entry: Mapping[str, Any]) -> TieredPrice:
    _require(key, entry, "tiers", "unit", "source")
    tiers = tuple(
        Tier(None if t.get("up_to_gb") is None else float(t["up_to_gb"]), float(t["usd_per_gb"]))
        for t in entry["tiers"]
    )
    return TieredPrice(
        key, tiers, str(entry["unit"]), str(entry["source"]), str(entry.get("read_via", "")), _confidence(key, entry)
    )
