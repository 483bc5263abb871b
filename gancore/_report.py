"""The run report: one self-contained HTML page per run directory (or several, compared).

Built from the run directory alone (no networks, no plugins): ``config.toml``, ``metrics.jsonl``,
``samples/``, ``environment.json``, ``stages.json`` and ``checkpoints/best.json``. The data goes in
as inline JSON, the pictures as inline base64 PNG, and the small script and style sheet that draw
the interactive curves come from ``gancore/assets``: the page opens without a network.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import re
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from gancore._atomic import atomic_write_text
from gancore._errors import TrainingError
from gancore._pictures import curve_panels, read_series

__all__ = [
    "REPORT_FILE",
    "RunData",
    "add_parser",
    "build_report",
    "read_run",
    "run_command",
    "write_report",
]

REPORT_FILE = "report.html"
# Sample grids shown per run: the first, the last and evenly spaced ones between.
MAX_GRIDS = 40
# Longest side of a grid in the page, in pixels (larger grids are scaled down).
MAX_GRID_SIDE = 768
# Pictures of one run, in bytes of PNG: past it, every other grid between the first and the last
# is dropped until they fit, so that a report stays a few MB.
MAX_PICTURE_BYTES = 3_000_000
# Points per series in the page: a longer series keeps every k-th value and its last.
MAX_POINTS = 4000
_STEP_GRID = re.compile(r"^step-(\d+)\.png$")


@attrs.frozen(kw_only=True)
class RunData:
    """What a report shows of one run directory."""

    name: str
    path: Path
    config_text: str  # config.toml as written, "" when absent
    config: Mapping[str, Any]  # parsed config.toml (empty when absent or unreadable)
    records: Sequence[Mapping[str, Any]]  # metrics.jsonl, in order
    environment: Mapping[str, Any]
    stages: Sequence[Mapping[str, Any]]  # index, name, start, end (iterations), resolution
    grids: Sequence[tuple[int, Path]]  # (step, file) of samples/step-*.png, by step
    reals: Path | None  # samples/reals.png
    best: Mapping[str, Any]  # checkpoints/best.json

    @property
    def train_records(self) -> list[Mapping[str, Any]]:
        return [r for r in self.records if r.get("event") == "train"]

    @property
    def metric_records(self) -> list[Mapping[str, Any]]:
        return [r for r in self.records if r.get("event") == "metric"]

    @property
    def steps_planned(self) -> int | None:
        steps = self.config.get("run", {}).get("steps")
        return steps if isinstance(steps, int) else None

    @property
    def last_step(self) -> int:
        return max((int(r.get("step", 0)) for r in self.records), default=0)

    @property
    def status(self) -> str:
        """'finished', or where the run stands ('at step N of M'), or 'no steps logged'."""
        planned = self.steps_planned
        if not self.records:
            return "no steps logged yet"
        if planned is not None and self.last_step >= planned:
            return "finished"
        of = f" of {planned}" if planned is not None else ""
        return f"at step {self.last_step}{of} (running, stopped or interrupted)"

    @property
    def train_seconds(self) -> float:
        """Training time over every session: ``time_s`` restarts at 0 after a resume."""
        total, last = 0.0, 0.0
        for record in self.train_records:
            t = record.get("time_s")
            if not isinstance(t, int | float):
                continue
            if t < last:  # a new session (resume)
                total += last
            last = float(t)
        return total + last


def read_run(run_dir: str | Path) -> RunData:
    """The report's view of ``run_dir``. A folder with neither ``metrics.jsonl`` nor
    ``config.toml`` is a ``FileNotFoundError`` naming it."""
    import tomllib

    path = Path(run_dir)
    config_file, log_file = path / "config.toml", path / "metrics.jsonl"
    if not (config_file.is_file() or log_file.is_file()):
        raise FileNotFoundError(
            f"{str(path)!r} is not a run directory (no config.toml or metrics.jsonl)"
        )
    config_text = config_file.read_text() if config_file.is_file() else ""
    try:
        config = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError:
        config = {}
    records = []
    if log_file.is_file():
        for line in log_file.read_text().splitlines():
            try:  # a line cut short by a crash (or being written) is left out
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step", 0), int):
                records.append(record)
    grids = []
    samples = path / "samples"
    if samples.is_dir():
        for file in samples.iterdir():
            if match := _STEP_GRID.match(file.name):
                grids.append((int(match.group(1)), file))
    stages = _json_file(path / "stages.json").get("stages") or _stages_from(records)
    name = config.get("run", {}).get("name") or path.name
    return RunData(
        name=str(name),
        path=path,
        config_text=config_text,
        config=config,
        records=records,
        environment=_json_file(path / "environment.json"),
        stages=list(stages),
        grids=sorted(grids),
        reals=samples / "reals.png" if (samples / "reals.png").is_file() else None,
        best=_json_file(path / "checkpoints" / "best.json"),
    )


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _stages_from(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Stages as the train records show them (runs without stages.json): each stage from the
    first logged step in it, to the log interval's precision."""
    stages: list[dict[str, Any]] = []
    previous = 0
    for record in records:
        stage = record.get("stage")
        if record.get("event") != "train" or not isinstance(stage, int):
            continue
        if not stages or stages[-1]["index"] != stage:
            stages.append({"index": stage, "name": str(stage), "start": previous})
        previous = int(record["step"])
    return stages


# -------------------------------------------------------------------------------------------------
# The page
# -------------------------------------------------------------------------------------------------


def build_report(run_dirs: Sequence[str | Path], *, title: str | None = None) -> str:
    """The HTML page of one run, or comparing several: self-contained, no network needed."""
    runs = [read_run(d) for d in run_dirs]
    if not runs:
        raise ValueError("build_report needs at least one run directory")
    series = [read_series(run.records) for run in runs]
    merged: dict[str, tuple[list[float], list[float]]] = {}
    for one in series:
        for key, (xs, ys) in one.items():
            mx, my = merged.setdefault(key, ([], []))
            mx.extend(xs)
            my.extend(ys)
    panels = [
        {"group": p.group, "keys": list(p.keys), "log": p.log_scale} for p in curve_panels(merged)
    ]
    shown: list[dict[str, Any]] = [
        {
            "name": run.name,
            "series": {k: _thinned(xs, ys) for k, (xs, ys) in one.items()},
            "stages": [
                {"name": str(s.get("name", s.get("index"))), "start": s.get("start", 0)}
                for s in run.stages
            ],
            "grids": [{"step": step, "src": src} for step, src in _grid_sources(run)],
        }
        for run, one in zip(runs, series, strict=True)
    ]
    data = {"panels": panels, "runs": shown}
    compare = len(runs) > 1
    title = title or (
        "Comparison: " + ", ".join(run.name for run in runs) if compare else f"Run {runs[0].name}"
    )
    body = [
        f"<header><h1>{_e(title)}</h1>",
        f"<p class='meta'>gancore run report, written {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}"
        "</p></header>",
        _summary(runs),
        "<section id='curves'><h2>Curves</h2><p class='hint'>Hover for values; drag across a "
        "chart to zoom in on those steps, double-click to zoom out; 'log' toggles a logarithmic "
        "axis."
        + (" Dashed vertical lines: stage boundaries." if any(r.stages for r in runs) else "")
        + "</p><div id='charts'></div></section>",
        _samples_section(runs, shown),
        _metrics_section(runs),
        _environment_section(runs),
        _config_section(runs),
    ]
    return _page(title, "\n".join(body), data)


def _thinned(xs: list[float], ys: list[float]) -> list[list[float]]:
    """``[xs, ys]`` with at most MAX_POINTS points: every k-th, and the last."""
    if len(xs) <= MAX_POINTS:
        return [xs, ys]
    every = math.ceil(len(xs) / MAX_POINTS)
    keep = [*range(0, len(xs) - 1, every), len(xs) - 1]
    return [[xs[i] for i in keep], [ys[i] for i in keep]]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _asset(name: str) -> str:
    return resources.files("gancore").joinpath("assets", name).read_text(encoding="utf-8")


def _page(title: str, body: str, data: Mapping[str, Any]) -> str:
    # JSON inside <script>: "</" would end the element early.
    payload = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_asset('report.css')}</style></head><body>\n"
        f"{body}\n<script id='report-data' type='application/json'>{payload}</script>\n"
        f"<script>{_asset('report.js')}</script>\n</body></html>\n"
    )


def _summary(runs: Sequence[RunData]) -> str:
    rows = []
    for run in runs:
        planned = run.steps_planned
        steps = f"{run.last_step}" + (f" / {planned}" if planned is not None else "")
        images = max((int(r.get("images_seen", 0)) for r in run.train_records), default=0)
        best = run.best
        best_text = (
            f"{best.get('metric')} = {_number(best.get('value'))} at step {best.get('step')}"
            if best
            else "-"
        )
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{_e(x)}</td>"
                for x in (
                    run.name,
                    run.status,
                    steps,
                    f"{images:,}",
                    _duration(run.train_seconds),
                    best_text,
                    str(run.path),
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("run", "status", "steps", "images seen", "time", "best checkpoint", "directory")
    )
    return (
        f"<section id='summary'><h2>Summary</h2><table><tr>{head}</tr>{''.join(rows)}</table>"
        "</section>"
    )


def _duration(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "non-finite" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.6g}"


def _picture(path: Path) -> str | None:
    """``path``'s picture as a PNG data URL, scaled down to MAX_GRID_SIDE; None if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as file:
            image: Image.Image = file.copy()
        if max(image.size) > MAX_GRID_SIDE:
            scale = MAX_GRID_SIDE / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
    except OSError:
        return None
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _grid_sources(run: RunData) -> list[tuple[int, str]]:
    """(step, data URL) of the run's grids shown: at most MAX_GRIDS, evenly spaced from the
    first to the last, thinned further until their PNGs fit MAX_PICTURE_BYTES."""
    chosen = list(run.grids)
    if len(chosen) > MAX_GRIDS:
        picks = sorted({round(i * (len(chosen) - 1) / (MAX_GRIDS - 1)) for i in range(MAX_GRIDS)})
        chosen = [chosen[i] for i in picks]
    encoded = [(step, src) for step, file in chosen if (src := _picture(file)) is not None]
    while len(encoded) > 2 and sum(len(src) for _, src in encoded) * 3 / 4 > MAX_PICTURE_BYTES:
        encoded = encoded[:-1:2] + encoded[-1:]  # every other one, and the last
    return encoded


def _samples_section(runs: Sequence[RunData], data: Sequence[Mapping[str, Any]]) -> str:
    columns = []
    for i, (run, shown) in enumerate(zip(runs, data, strict=True)):
        grids = shown["grids"]
        reals = _picture(run.reals) if run.reals is not None else None
        head = f"<h3>{_e(run.name)}</h3>" if len(runs) > 1 else ""
        if grids:
            last = grids[-1]
            fake = (
                f"<figure><img class='grid' id='grid-{i}' alt='generated samples' "
                f"src='{last['src']}'><figcaption id='grid-caption-{i}'>generated, step "
                f"{last['step']}</figcaption></figure>"
            )
            slider = (
                f"<div class='slider'><input type='range' id='slider-{i}' data-run='{i}' "
                f"min='0' max='{len(grids) - 1}' value='{len(grids) - 1}' step='1' "
                f"aria-label='sample grid of {_e(run.name)}'> <span id='slider-label-{i}'>"
                f"{len(grids)} / {len(grids)}</span></div>"
            )
        else:
            fake, slider = "<p>No sample grids yet.</p>", ""
        real = (
            f"<figure><img class='grid reals' id='reals-{i}' alt='real images' src='{reals}'>"
            "<figcaption>real images</figcaption></figure>"
            if reals
            else ""
        )
        columns.append(
            f"<div class='run-samples'>{head}{slider}<div class='pair'>{fake}{real}</div></div>"
        )
    hint = (
        "The fixed inputs' grid over training (move the slider), beside real images."
        if len(runs) == 1
        else "Each run's latest grid, side by side; the sliders go back in time."
    )
    return (
        f"<section id='samples'><h2>Samples</h2><p class='hint'>{hint}</p>"
        f"<div class='runs'>{''.join(columns)}</div></section>"
    )


def _metric_values(run: RunData) -> dict[str, tuple[Any, int]]:
    """Each metric value's last result and its step (numbers; ``None`` for a non-finite one,
    which metrics.jsonl holds as null)."""
    values: dict[str, tuple[Any, int]] = {}
    for record in run.metric_records:
        for key, value in record.items():
            if key in ("event", "step", "images_seen", "metrics_time_s", "resolution"):
                continue
            # numbers only: the protocol lists the rest (which generator, the extractor, ...)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                continue
            values[key] = (value, int(record["step"]))
    return values


def _protocols(run: RunData) -> dict[str, Mapping[str, Any]]:
    """Each metric's protocol of its last result (``<metric>.protocol`` in metric records)."""
    found: dict[str, Mapping[str, Any]] = {}
    for record in run.metric_records:
        for key, value in record.items():
            if key.endswith(".protocol") and isinstance(value, dict):
                found[key.removesuffix(".protocol")] = value
    return found


def _protocol_text(protocol: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{k} = {'none' if v is None else json.dumps(v) if isinstance(v, dict | list) else _number(v)}"
        for k, v in protocol.items()
    )


def _metrics_section(runs: Sequence[RunData]) -> str:
    values = [_metric_values(run) for run in runs]
    keys = sorted({k for v in values for k in v})
    if not keys:
        return "<section id='metrics'><h2>Metrics</h2><p>No metric results.</p></section>"
    if len(runs) == 1:
        head = "<tr><th>metric</th><th>last value</th><th>step</th><th>best</th></tr>"
        rows = []
        for key in keys:
            value, step = values[0][key]
            history = [
                (r[key], r["step"])
                for r in runs[0].metric_records
                if isinstance(r.get(key), int | float) and not isinstance(r.get(key), bool)
            ]
            best = ""
            if len(history) > 1:
                low, high = min(history), max(history)
                best = f"min {_number(low[0])} (step {low[1]}), max {_number(high[0])} (step {high[1]})"
            rows.append(
                f"<tr><td>{_e(key)}</td><td class='num'>{_e(_number(value))}</td>"
                f"<td class='num'>{step}</td><td>{_e(best)}</td></tr>"
            )
    else:
        head = "<tr><th>metric</th>" + "".join(f"<th>{_e(r.name)}</th>" for r in runs) + "</tr>"
        rows = []
        for key in keys:
            cells = "".join(
                f"<td class='num'>{_e(_number(v[key][0]))} <small>(step {v[key][1]})</small></td>"
                if key in v
                else "<td>-</td>"
                for v in values
            )
            rows.append(f"<tr><td>{_e(key)}</td>{cells}</tr>")
    protocols = []
    for run in runs:
        for metric, protocol in sorted(_protocols(run).items()):
            who = f"{run.name}: " if len(runs) > 1 else ""
            protocols.append(f"<li><b>{_e(who + metric)}</b>: {_e(_protocol_text(protocol))}</li>")
    listing = (
        f"<h3>Protocols</h3><ul class='protocols'>{''.join(protocols)}</ul>" if protocols else ""
    )
    return (
        f"<section id='metrics'><h2>Metrics</h2><table class='metrics'>{head}{''.join(rows)}"
        f"</table>{listing}</section>"
    )


def _environment_section(runs: Sequence[RunData]) -> str:
    parts = []
    for run in runs:
        sessions = [s for s in run.environment.get("sessions", []) if isinstance(s, dict)]
        head = f"<h3>{_e(run.name)}</h3>" if len(runs) > 1 else ""
        if not sessions:
            parts.append(f"{head}<p>No environment.json in this run directory.</p>")
            continue
        keys = list(dict.fromkeys(k for s in sessions for k in s))
        top = "".join(f"<th>session {i + 1}</th>" for i in range(len(sessions)))
        rows = "".join(
            f"<tr><th>{_e(k)}</th>"
            + "".join(f"<td>{_e(_env_value(s.get(k, '-')))}</td>" for s in sessions)
            + "</tr>"
            for k in keys
        )
        head_row = f"<tr><th></th>{top}</tr>" if len(sessions) > 1 else ""
        parts.append(f"{head}<table class='env'>{head_row}{rows}</table>")
    return f"<section id='environment'><h2>Environment</h2>{''.join(parts)}</section>"


def _env_value(value: Any) -> str:
    if value == {}:
        return "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _config_section(runs: Sequence[RunData]) -> str:
    parts = []
    for run in runs:
        text = run.config_text or "(no config.toml)"
        label = f"config.toml of {run.name}" if len(runs) > 1 else "config.toml"
        parts.append(
            f"<details class='config'><summary>{_e(label)} ({len(text.splitlines())} lines)"
            f"</summary><pre>{_e(text)}</pre></details>"
        )
    return f"<section id='config'><h2>Resolved config</h2>{''.join(parts)}</section>"


def write_report(
    run_dir: str | Path, out: str | Path | None = None, *, compare: Sequence[str | Path] = ()
) -> Path:
    """Write the report of ``run_dir`` (with ``compare``: of it and those runs) to ``out``
    (default: ``run_dir/report.html``), atomically; its path."""
    target = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    text = build_report([run_dir, *compare])
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return target


# -------------------------------------------------------------------------------------------------
# gan report
# -------------------------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``gan report RUN [RUN ...] [--out FILE]`` on ``subparsers`` (argparse's)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="write a run's HTML report (or compare runs)",
        description=(
            "Write one self-contained HTML page for a run directory: summary, interactive "
            "curves, sample grids over time beside real images, metrics with their protocols, "
            "environment and resolved config. It opens without a network. With several runs, "
            "one page compares them. See docs/run_report.md."
        ),
        epilog=(
            "examples:\n"
            "  gan report runs/digits-dcgan                  # runs/digits-dcgan/report.html\n"
            "  gan report runs/a runs/b --out compare.html   # two runs on one page\n\n"
            "exit codes: 0 written, 2 not a run directory or a file cannot be written"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``gan report``'s arguments on ``parser``."""
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories")
    parser.add_argument(
        "--out",
        type=Path,
        help="the HTML file (default: RUN/report.html for one run, report-compare.html in the "
        "current folder for several)",
    )


def run_command(args: argparse.Namespace) -> int:
    """``gan report``: write the page, print its path; 2 and one line on a user error."""
    runs: list[Path] = list(args.runs)
    out = args.out
    if out is None and len(runs) > 1:
        out = Path("report-compare.html")
    try:
        path = write_report(runs[0], out, compare=runs[1:])
    except (OSError, TrainingError) as exc:  # not a run directory; the page cannot be written
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
