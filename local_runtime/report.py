"""``report.html``: a page a person reads after a run: stages and counts, the evaluation plots,
sample features and the errors by reason, all from the files the run wrote."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import duckdb

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1f2933}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #d9e2ec}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d9e2ec;padding:.25rem .6rem;text-align:left}
th{background:#f0f4f8}.ok{color:#0b7a3e}.bad{color:#b42318;font-weight:bold}img{max-width:32rem;margin:.5rem}
code{background:#f0f4f8;padding:0 .2rem}
"""


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Local run</title><style>{_STYLE}</style></head><body>"
    ]
    parts.append("<h1>Streaming ML platform: local run</h1>")
    lost = summary.get("lost", 0)
    verdict = "ok" if lost == 0 else "bad"
    parts.append(f"<p class='{verdict}'>Records lost: {lost}</p>")
    for stage in ("clickstream", "cdc", "video", "features", "model", "serving"):
        if stage in summary:
            parts.append(f"<h2>{stage}</h2>{_table(_flatten(summary[stage]))}")
            if stage == "features":
                parts.append(_parity(out, summary[stage]))
    if summary.get("skipped"):
        parts.append(f"<h2>Skipped stages</h2>{_table(summary['skipped'])}")
    parts.append(_plots(out / "ml" / "evaluation"))
    parts.append(_sample(out / "lake" / "features" / "user_clickstream", "Sample clickstream features"))
    parts.append(_sample(out / "lake" / "training_set", "Sample training rows (point-in-time)"))
    parts.append("<h2>Where things are</h2><ul>")
    for name in ("lake", "errors", "ml", "summary.json"):
        parts.append(f"<li><code>{html.escape(str(out / name))}</code></li>")
    parts.append("</ul></body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path


def _parity(out: Path, features: dict[str, Any]) -> str:
    """The online/offline verdict: the streaming path's records against the Spark job's features."""
    mismatches = features.get("online_offline_mismatches")
    if mismatches is None:
        return ""
    verdict = "ok" if mismatches == 0 else "bad"
    folder = html.escape(str(out / "errors" / "features"))
    where = "" if mismatches == 0 else f" (the differences are in <code>{folder}</code>)"
    users = features.get("online_users", 0)
    return (
        f"<p class='{verdict}'>Online records that differ from the Spark job's features: "
        f"{mismatches} of {users} users{where}</p>"
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            flat.update(_flatten(item, name))
        else:
            flat[name] = item
    return flat


def _table(rows: dict[str, Any]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{body}</table>"


def _plots(folder: Path) -> str:
    images = sorted(folder.glob("*.png")) if folder.exists() else []
    if not images:
        return ""
    tags = "".join(
        f"<img alt='{html.escape(p.stem)}' src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>"
        for p in images
    )
    return f"<h2>Evaluation</h2>{tags}"


def _sample(folder: Path, title: str, limit: int = 8) -> str:
    if not folder.exists() or not any(folder.rglob("*.parquet")):
        return ""
    pattern = str(folder / "**" / "*.parquet")
    relation = duckdb.connect().execute(
        f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = true) LIMIT {limit}"
    )
    columns = [c[0] for c in relation.description]
    rows = relation.fetchall()
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<h2>{html.escape(title)}</h2><div style='overflow-x:auto'><table><tr>{head}</tr>{body}</table></div>"
