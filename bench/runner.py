"""Run every ``bench/bench_*.py`` module in its own process and turn their answers into one table.

Each module is a separate interpreter (``python -m bench.runner --child MODULE OUT``): imports and
caches of one benchmark cannot speed up or slow down the next, a crash or a hang is contained,
and ``os.wait4`` gives each module's own peak memory and CPU time (of the process and the
descendants it waits for: a JVM that Spark starts and never waits for is not counted). Modules run one after
another: on a two-core machine, running them side by side would measure them against each other.

Every module returns figures in its own shape; :data:`NORMALISERS` maps each known shape to
:class:`Figure` rows (value, the floor or peer measured in the same run, their ratio, and a
target where the project has one). A module nobody taught the runner about still shows up: its
numeric leaves are listed as informational figures.

The pure parts (normalisation, verdicts, rendering) are what ``tests/bench`` checks; nothing in
the tests runs a benchmark.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

# The benchmarks the project expects; one that is absent is reported as missing, not skipped silently.
EXPECTED_MODULES: tuple[str, ...] = (
    "bench_transform",
    "bench_parsers",
    "bench_producer",
    "bench_avro",
    "bench_sessionize",
    "bench_video",
    "bench_inference",
    "bench_synth",
)
DEFAULT_TIMEOUT_SECONDS = 240.0
# Modules that legitimately take longer (two cold synths; Spark start-up on a loaded machine).
TIMEOUTS: Mapping[str, float] = {"bench_synth": 480.0, "bench_sessionize": 360.0}

Status = Literal["ok", "failed", "timeout", "missing"]
Verdict = Literal["pass", "fail", "info", "error"]
Comparison = Literal[">=", "<=", "<", ">"]


# ---------------------------------------------------------------------------------------------
# Results of running modules
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleRun:
    """What running one module produced: its raw figures, or why there are none."""

    name: str
    status: Status
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    result: Mapping[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Target:
    """A bound the project promises: ``value <comparison> threshold``."""

    comparison: Comparison
    threshold: float

    def met_by(self, value: float) -> bool:
        checks: dict[str, Callable[[float, float], bool]] = {
            ">=": lambda v, t: v >= t,
            "<=": lambda v, t: v <= t,
            "<": lambda v, t: v < t,
            ">": lambda v, t: v > t,
        }
        return checks[self.comparison](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.comparison} {_number(self.threshold)}"


@dataclass(frozen=True)
class Figure:
    """One row of the results table."""

    module: str
    name: str
    value: float | None
    unit: str
    floor: float | None = None
    floor_label: str = ""
    ratio: float | None = None
    target: Target | None = None
    verdict: Verdict = "info"
    note: str = ""


def judge(value: float | None, target: Target | None) -> Verdict:
    """pass/fail against the target; info where there is none; error where there is no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "error"
    if target is None:
        return "info"
    return "pass" if target.met_by(value) else "fail"


def ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or floor is None or floor == 0:
        return None
    return value / floor


def figure(
    module: str,
    name: str,
    value: Any,
    unit: str,
    *,
    floor: Any = None,
    floor_label: str = "",
    target: Target | None = None,
    note: str = "",
    ratio_value: Any = None,
) -> Figure:
    """A row, with its ratio (given, or value / floor) and its verdict filled in."""
    number = _as_number(value)
    floor_number = _as_number(floor)
    given_ratio = _as_number(ratio_value)
    return Figure(
        module=module,
        name=name,
        value=number,
        unit=unit,
        floor=floor_number,
        floor_label=floor_label,
        ratio=given_ratio if given_ratio is not None else ratio(number, floor_number),
        target=target,
        verdict=judge(number, target),
        note=note,
    )


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


# ---------------------------------------------------------------------------------------------
# Normalisers: one per known module shape
# ---------------------------------------------------------------------------------------------


def _get(raw: Mapping[str, Any], *path: str) -> Any:
    node: Any = raw
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def normalise_transform(raw: Mapping[str, Any]) -> list[Figure]:
    m = "bench_transform"
    per_core = _as_number(raw.get("target_events_per_second")) or 25_000.0
    max_ratio = _as_number(raw.get("target_max_ratio")) or 4.0
    return [
        figure(
            m,
            "clickstream transform throughput",
            raw.get("handler_events_per_second"),
            "events/CPU-s",
            floor=raw.get("floor_events_per_second"),
            floor_label="decode+encode floor",
            target=Target(">=", per_core),
            note="per core (CPU time); best of interleaved rounds",
        ),
        figure(
            m,
            "transform cost vs decode floor",
            raw.get("floor_over_handler_ratio"),
            "x slower than floor",
            target=Target("<=", max_ratio),
            note="floor events/s / handler events/s",
        ),
        figure(
            m,
            "transform first invocation (cold caches)",
            raw.get("first_invocation_seconds_cold_caches"),
            "s",
            note="500 records, wall clock",
        ),
    ]


def normalise_producer(raw: Mapping[str, Any]) -> list[Figure]:
    m = "bench_producer"
    floor_rate = _get(raw, "floor_json_encode", "events_per_cpu_second")
    capacity = _get(raw, "capacity_at_1m_events_per_second") or {}
    needed = _as_number(capacity.get("min_aggregation_factor_to_be_byte_bound"))
    return [
        figure(
            m,
            "producer throughput, plain",
            _get(raw, "plain", "events_per_cpu_second"),
            "events/CPU-s",
            floor=floor_rate,
            floor_label="JSON encode floor",
        ),
        figure(
            m,
            "producer throughput, KPL-aggregated",
            _get(raw, "aggregated", "events_per_cpu_second"),
            "events/CPU-s",
            floor=floor_rate,
            floor_label="JSON encode floor",
        ),
        figure(
            m,
            "events per Kinesis record (aggregated)",
            _get(raw, "aggregated", "events_per_kinesis_record"),
            "events/record",
            floor=needed,
            floor_label="factor that makes 1M ev/s of 600 B byte-bound",
            target=Target(">=", needed) if needed is not None else None,
        ),
        figure(
            m,
            "shards for 1M events/s of 600 B, aggregated",
            capacity.get("shards_aggregated_with_kpl_overhead"),
            "shards",
            floor=capacity.get("shards_unaggregated"),
            floor_label="unaggregated",
            note="with the KPL format's real overhead",
        ),
    ]


def normalise_parsers(raw: Mapping[str, Any]) -> list[Figure]:
    m = "bench_parsers"
    return [
        figure(
            m,
            "msgspec decode",
            raw.get("decode_msgspec_events_per_cpu_second"),
            "events/CPU-s",
            floor=raw.get("decode_json_events_per_cpu_second"),
            floor_label="stdlib json",
        ),
        figure(
            m,
            "msgspec encode",
            raw.get("encode_msgspec_events_per_cpu_second"),
            "events/CPU-s",
            floor=raw.get("encode_json_events_per_cpu_second"),
            floor_label="stdlib json",
        ),
    ]


def normalise_avro(raw: Mapping[str, Any]) -> list[Figure]:
    m = "bench_avro"
    schema = raw.get("schema", "")
    return [
        figure(
            m,
            "Avro schemaless encode",
            raw.get("avro_schemaless_records_per_cpu_second"),
            "records/CPU-s",
            floor=raw.get("json_records_per_cpu_second"),
            floor_label="stdlib json",
            note=str(schema),
        ),
        figure(
            m,
            "Avro container (deflate) encode",
            raw.get("avro_container_deflate_records_per_cpu_second"),
            "records/CPU-s",
            floor=raw.get("json_gzip_records_per_cpu_second"),
            floor_label="json + gzip",
        ),
        figure(
            m,
            "Avro schemaless size",
            raw.get("avro_schemaless_bytes_per_record"),
            "bytes/record",
            floor=raw.get("json_bytes_per_record"),
            floor_label="JSON",
        ),
        figure(
            m,
            "Avro container (deflate) size",
            raw.get("avro_container_deflate_bytes_per_record"),
            "bytes/record",
            floor=raw.get("json_gzip_bytes_per_record"),
            floor_label="JSON lines + gzip",
        ),
    ]


def normalise_synth(raw: Mapping[str, Any]) -> list[Figure]:
    m = "bench_synth"
    target = _as_number(raw.get("target_seconds")) or 60.0
    return [
        figure(
            m,
            "cold cdk synth, whole app",
            raw.get("app_seconds"),
            "s",
            floor=raw.get("empty_app_seconds"),
            floor_label="empty CDK app",
            target=Target("<", target),
            note=f"wall clock; CPU {raw.get('app_cpu_seconds')} s vs {raw.get('empty_app_cpu_seconds')} s",
        )
    ]


def normalise_sessionize(raw: Mapping[str, Any]) -> list[Figure]:
    m = "bench_sessionize"
    return [
        figure(
            m,
            "sessionize, Spark local[2]",
            raw.get("spark_events_per_s"),
            "events/s",
            floor=raw.get("duckdb_events_per_s"),
            floor_label="DuckDB, same query",
            note=f"Spark start-up {raw.get('spark_startup_s')} s not included",
        )
    ]


def normalise_video(raw: Mapping[str, Any]) -> list[Figure]:
    m = "bench_video"
    rows: list[Figure] = []
    for case in raw.get("cases") or []:
        if not isinstance(case, Mapping):
            continue
        label = f"{case.get('resolution', '?')}{' +frames' if case.get('frames_sampled') else ''}"
        rows.append(
            figure(
                m,
                f"video ingest {label}",
                case.get("video_seconds_per_wall_second"),
                "video-s per wall-s",
                ratio_value=case.get("ingest_over_sum_of_floors"),
                floor_label="ratio = ingest / (download+probe+AWS floors)",
                note=f"worker alone peak RSS {case.get('worker_alone_maxrss_mb')} MB",
            )
        )
    return rows


NORMALISERS: Mapping[str, Callable[[Mapping[str, Any]], list[Figure]]] = {
    "bench_transform": normalise_transform,
    "bench_producer": normalise_producer,
    "bench_parsers": normalise_parsers,
    "bench_avro": normalise_avro,
    "bench_synth": normalise_synth,
    "bench_sessionize": normalise_sessionize,
    "bench_video": normalise_video,
}

GENERIC_LIMIT = 12  # rows per unknown module, so one chatty module cannot drown the table


def numeric_leaves(raw: Any, prefix: str = "") -> Iterable[tuple[str, float]]:
    """(dotted.path, number) for every number in nested dicts and lists, in order."""
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            yield from numeric_leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            yield from numeric_leaves(value, f"{prefix}[{index}]")
    else:
        number = _as_number(raw)
        if number is not None:
            yield prefix, number


def normalise_generic(module: str, raw: Mapping[str, Any]) -> list[Figure]:
    """Informational rows for a module the runner has no normaliser for."""
    rows = [figure(module, path, value, "") for path, value in numeric_leaves(raw)]
    return rows[:GENERIC_LIMIT]


def normalise(run: ModuleRun) -> list[Figure]:
    """The table rows of one module; a module without figures gets one error row saying why."""
    if run.status != "ok" or run.result is None:
        reason = run.error or run.status
        return [
            Figure(
                module=run.name,
                name="(module did not run)" if run.status == "missing" else "(module failed)",
                value=None,
                unit="",
                verdict="error",
                note=f"{run.status}: {_last_line(reason)}",
            )
        ]
    normaliser = NORMALISERS.get(run.name)
    try:
        rows = normaliser(run.result) if normaliser else normalise_generic(run.name, run.result)
    except Exception as exc:  # a changed output shape must not hide the other modules' results
        return [Figure(run.name, "(unreadable output)", None, "", verdict="error", note=repr(exc)[:200])]
    return rows or normalise_generic(run.name, run.result)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else text)[:200]


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value != 0 and abs(value) >= 1000:
        return f"{value:,.0f}"
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}".rstrip("0").rstrip(".")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(figures: Sequence[Figure]) -> str:
    header = "| figure | value | floor / peer | ratio | target | verdict |\n|---|---:|---|---:|---|---|"
    rows = []
    for f in figures:
        value = f"{_number(f.value)} {f.unit}".strip()
        floor = f"{_number(f.floor)} ({f.floor_label})" if f.floor is not None else (f.floor_label or "-")
        ratio_text = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        name = f"{f.name} — {f.note}" if f.note else f.name
        rows.append(
            f"| {_cell(name)} | {_cell(value)} | {_cell(floor)} | {ratio_text} | "
            f"{_cell(str(f.target) if f.target else '-')} | {f.verdict} |"
        )
    return "\n".join([header, *rows])


def markdown_modules(runs: Sequence[ModuleRun]) -> str:
    header = "| module | status | wall s | CPU s | peak RSS MB |\n|---|---|---:|---:|---:|"
    rows = [
        f"| {r.name} | {r.status} | {r.wall_seconds:.1f} | {r.cpu_seconds:.1f} | {r.peak_rss_mb:.0f} |" for r in runs
    ]
    return "\n".join([header, *rows])


def render_markdown(runs: Sequence[ModuleRun], figures: Sequence[Figure], machine: Mapping[str, Any]) -> str:
    verdicts = summary(figures)
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"Run {machine.get('finished_at', '')} on {machine.get('cpu_count')} cores, load average "
            f"{machine.get('load_average_before')} before and {machine.get('load_average_after')} after "
            "(1-minute). Throughputs are per CPU-second of one process unless the unit says otherwise; "
            "every ratio compares figures measured in the same run.",
            "",
            markdown_table(figures),
            "",
            f"Targets: {verdicts['pass']} pass, {verdicts['fail']} fail; {verdicts['error']} rows without a value.",
            "",
            "## Modules",
            "",
            markdown_modules(runs),
            "",
        ]
    )


def summary(figures: Iterable[Figure]) -> dict[str, int]:
    counts = {"pass": 0, "fail": 0, "info": 0, "error": 0}
    for f in figures:
        counts[f.verdict] += 1
    return counts


def results_document(
    runs: Sequence[ModuleRun], figures: Sequence[Figure], machine: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything for ``results.json``: the machine, each module's raw answer, and the rows."""
    return {
        "machine": dict(machine),
        "summary": summary(figures),
        "modules": {r.name: asdict(r) for r in runs},
        "figures": [{**asdict(f), "target": None if f.target is None else asdict(f.target)} for f in figures],
    }


# ---------------------------------------------------------------------------------------------
# Discovery and isolated execution
# ---------------------------------------------------------------------------------------------


def discover(bench_dir: Path = BENCH_DIR) -> list[str]:
    """Module names of every ``bench_*.py`` file beside this one, sorted."""
    return sorted(path.stem for path in bench_dir.glob("bench_*.py"))


def plan(found: Iterable[str], only: Sequence[str] = ()) -> list[str]:
    """The modules to run, in a stable order: the expected ones first, then any others found."""
    names = list(EXPECTED_MODULES) + sorted(set(found) - set(EXPECTED_MODULES))
    if not only:
        return names
    # Names asked for that nobody knows still get a row (reported missing), not silence.
    return [n for n in names if n in only] + [n for n in dict.fromkeys(only) if n not in names]


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    started: float
    out: Path
    log: Path = field(default_factory=Path)


def run_module(name: str, timeout: float, workdir: Path, found: Iterable[str]) -> ModuleRun:
    """Run ``bench.<name>.run()`` in a fresh interpreter; never raises for the module's faults."""
    if name not in set(found):
        return ModuleRun(name, "missing", error=f"bench/{name}.py does not exist")
    out = workdir / f"{name}.json"
    log = workdir / f"{name}.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.runner", "--child", name, str(out)],
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a timeout ends its children too
        )
        child = _Child(process, time.perf_counter(), out, log)
        status, rusage = _wait(child, timeout)
    wall = time.perf_counter() - child.started
    cpu = (rusage.ru_utime + rusage.ru_stime) if rusage else 0.0
    peak = (rusage.ru_maxrss / 1024) if rusage else 0.0  # Linux reports KiB
    if status == "timeout":
        return ModuleRun(name, "timeout", wall, cpu, peak, error=f"no answer within {timeout:.0f} s")
    if not out.exists():
        return ModuleRun(name, "failed", wall, cpu, peak, error=_tail(log))
    answer = json.loads(out.read_text())
    if "error" in answer:
        return ModuleRun(name, "failed", wall, cpu, peak, error=answer["error"])
    return ModuleRun(name, "ok", wall, cpu, peak, result=answer["result"])


def _wait(child: _Child, timeout: float) -> tuple[str, Any]:
    """Wait for the child with ``wait4`` (its own rusage), ending its process group on timeout."""
    deadline = child.started + timeout
    pid = child.process.pid
    while True:
        waited, _, rusage = os.wait4(pid, os.WNOHANG)
        if waited == pid:
            child.process.returncode = 0  # reaped here; Popen must not wait for it again
            return "done", rusage
        if time.perf_counter() > deadline:
            os.killpg(pid, signal.SIGKILL)
            _, _, rusage = os.wait4(pid, 0)
            child.process.returncode = -signal.SIGKILL
            return "timeout", rusage
        time.sleep(0.2)


def _tail(log: Path, lines: int = 20) -> str:
    if not log.exists():
        return "no output"
    return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:]) or "no output"


def child_main(name: str, out: Path) -> int:
    """Inside the child: import the module, call ``run()``, write its answer (or the error) as JSON."""
    try:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "run", None)
        if not callable(run):
            raise TypeError(f"bench/{name}.py has no run() function")
        result = run()
        if not isinstance(result, Mapping):
            raise TypeError(f"bench.{name}.run() returned {type(result).__name__}, not a dict")
        out.write_text(json.dumps({"result": result}, default=str))
        return 0
    except BaseException as exc:
        out.write_text(json.dumps({"error": "".join(traceback.format_exception(exc))[-4000:]}))
        return 1


def machine_facts() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_before": round(os.getloadavg()[0], 2),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def run_all(
    only: Sequence[str] = (),
    *,
    timeout: float | None = None,
    out_dir: Path = BENCH_DIR,
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> tuple[list[ModuleRun], list[Figure], dict[str, Any]]:
    """Run the planned modules one by one and write ``results.json`` and ``results.md`` to ``out_dir``."""
    found = discover()
    machine = machine_facts()
    runs: list[ModuleRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        for name in plan(found, only):
            limit = timeout if timeout is not None else TIMEOUTS.get(name, DEFAULT_TIMEOUT_SECONDS)
            progress(f"bench: {name} (timeout {limit:.0f} s) ...")
            result = run_module(name, limit, Path(tmp), found)
            progress(f"bench: {name}: {result.status} in {result.wall_seconds:.1f} s")
            runs.append(result)
    machine["load_average_after"] = round(os.getloadavg()[0], 2)
    machine["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    figures = [row for r in runs for row in normalise(r)]
    (out_dir / "results.json").write_text(json.dumps(results_document(runs, figures, machine), indent=2) + "\n")
    (out_dir / "results.md").write_text(render_markdown(runs, figures, machine))
    return runs, figures, machine


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2], Path(sys.argv[3])))
    print("usage: python -m bench  (this module's own entry point is for the runner's children)", file=sys.stderr)
    sys.exit(2)
