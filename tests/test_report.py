"""The run report (gancore/_report.py): the HTML page built from a run directory, `gan report`'s
command functions, the page written by training, and the page in a real headless browser."""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gancore._pictures import save_grid
from gancore._report import (
    MAX_GRIDS,
    MAX_POINTS,
    add_parser,
    build_report,
    read_run,
    run_command,
    write_report,
)
from gancore._train import train
from tests.conftest import load

# The README's demo (examples/digits-dcgan.toml), cut down to seconds: 6 steps of small networks,
# grids every 2 steps, the FD metric on 64 samples at steps 3 and 6.
DEMO = Path(__file__).resolve().parents[1] / "examples" / "digits-dcgan.toml"
SHORT = (
    "run.steps=6",
    "data.limit=64",
    "generator.channels=8",
    "critic.channels=8",
    "training.batch_size=8",
    "training.num_samples=16",
    "training.log_every=1",
    "training.sample_every=2",
    "training.metrics_every=3",
    "training.checkpoint_every=6",
    "metrics.0.num_generated=64",
)


def _demo(*overrides: str) -> Any:
    return load(DEMO, *SHORT, *overrides)


def _fake_run(path: Path, name: str = "hand", grids: int = 3, stages: bool = False) -> Path:
    """A run directory written by hand: config, log records (train, metric), grids, reals."""
    path.mkdir(parents=True)
    (path / "config.toml").write_text(f'[run]\nname = "{name}"\nsteps = 30\n\n[training]\nlr = 1\n')
    records: list[dict[str, Any]] = []
    for step in range(5, 31, 5):
        record: dict[str, Any] = {
            "event": "train",
            "step": step,
            "images_seen": step * 8,
            "time_s": step / 10,
            "loss/critic": 1.0 / step,
            "loss/generator": 2.0 + step / 30,
            "augment/p": step / 100,
        }
        if stages:
            record["stage"] = int(step > 15)
        records.append(record)
    records.append(
        {
            "event": "metric",
            "step": 30,
            "images_seen": 240,
            "fid.fd-digits": 12.5,
            "fid.protocol": {"extractor": "digits-classifier", "num_generated": 2000},
        }
    )
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    generator = torch.Generator().manual_seed(len(name))
    for k in range(grids):
        images = torch.rand(4, 3, 8, 8, generator=generator) * 2 - 1
        save_grid(images, path / "samples" / f"step-{10 * k:07d}.png")
    save_grid(torch.linspace(-1, 1, 4 * 64).reshape(4, 1, 8, 8), path / "samples" / "reals.png")
    return path


def _data(page: str) -> Any:
    """The report's inline JSON."""
    found = re.search(r"type='application/json'>(.*?)</script>", page, re.S)
    assert found is not None
    return json.loads(found.group(1))


def _data_urls(text: str) -> list[bytes]:
    return [
        base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    ]


class TestBuildReport:
    def test_page_holds_config_curves_metrics_and_pictures(self, tmp_path: Path) -> None:
        """The page has the config text, every plotted series, the metric with its protocol,
        and the grids and reals as PNG data URLs that decode."""
        text = build_report([_fake_run(tmp_path / "run")])
        assert "Run hand" in text and "[run]" in text and "steps = 30" in text
        data = _data(text)
        assert set(data["runs"][0]["series"]) == {
            "loss/critic",
            "loss/generator",
            "augment/p",
            "fid.fd-digits",
        }
        assert data["runs"][0]["series"]["loss/critic"][0] == [5, 10, 15, 20, 25, 30]
        assert {p["group"] for p in data["panels"]} == {"loss", "augment", "fid"}
        assert [g["step"] for g in data["runs"][0]["grids"]] == [0, 10, 20]
        assert "12.5" in text and "extractor = digits-classifier" in text
        pictures = _data_urls(text)
        assert len(pictures) == 3 + 1 + 1  # the grids in the data, the last in the page, reals
        for png in pictures:
            assert png.startswith(b"\x89PNG\r\n\x1a\n")
            with Image.open(io.BytesIO(png)) as image:
                assert image.width > 0

    def test_page_loads_nothing_from_a_network(self, tmp_path: Path) -> None:
        """No src, href or CSS url() points anywhere but into the page (data: URLs)."""
        text = build_report([_fake_run(tmp_path / "run")])
        assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:|//)""", text)
        assert not re.search(r"url\(\s*['\"]?(https?:|//)", text)
        assert "<link" not in text and "@import" not in text and "fetch(" not in text
        assert all(m.startswith("data:") for m in re.findall(r"src='([^']*)'", text))

    def test_json_cannot_close_its_script_element(self, tmp_path: Path) -> None:
        """A run name with '</script>' is escaped in the page and in the inline JSON."""
        run = _fake_run(tmp_path / "run", name="x</script><b>")
        text = build_report([run])
        assert text.count("</script>") == 2  # the data's and the code's own
        assert "x&lt;/script&gt;&lt;b&gt;" in text

    def test_comparison_lists_every_run(self, tmp_path: Path) -> None:
        """Two runs: both names, a metric column each, both runs' series and grids."""
        a, b = _fake_run(tmp_path / "a", "alpha"), _fake_run(tmp_path / "b", "beta", grids=2)
        text = build_report([a, b])
        assert "Comparison: alpha, beta" in text
        assert "<th>alpha</th><th>beta</th>" in text
        data = _data(text)
        assert [r["name"] for r in data["runs"]] == ["alpha", "beta"]
        assert [len(r["grids"]) for r in data["runs"]] == [3, 2]
        assert "slider-0" in text and "slider-1" in text

    def test_many_grids_are_thinned_to_the_first_the_last_and_between(self, tmp_path: Path) -> None:
        """A run with more than MAX_GRIDS grids shows MAX_GRIDS, the first and last kept."""
        run = _fake_run(tmp_path / "run", grids=MAX_GRIDS + 11)
        data = build_report([run])
        steps = [int(s) for s in re.findall(r'"step":(\d+),"src"', data)]
        assert len(steps) == MAX_GRIDS and steps[0] == 0 and steps[-1] == 10 * (MAX_GRIDS + 10)

    def test_long_series_are_thinned_keeping_the_last_point(self, tmp_path: Path) -> None:
        """10,001 logged steps become at most MAX_POINTS points, every k-th and the last."""
        run = _fake_run(tmp_path / "run")
        with (run / "metrics.jsonl").open("a") as log:
            for step in range(31, 10_032):
                log.write(json.dumps({"event": "train", "step": step, "loss/critic": step}) + "\n")
        data = _data(build_report([run]))
        xs, ys = data["runs"][0]["series"]["loss/critic"]
        assert len(xs) <= MAX_POINTS and xs[0] == 5 and xs[-1] == 10_031 and ys[-1] == 10_031
        assert xs == sorted(xs)

    def test_stage_boundaries_come_from_stages_json_or_the_records(self, tmp_path: Path) -> None:
        """stages.json names the boundaries; without it, the records' stage index does."""
        run = _fake_run(tmp_path / "run", stages=True)
        assert [(s["name"], s["start"]) for s in read_run(run).stages] == [("0", 0), ("1", 15)]
        (run / "stages.json").write_text(
            json.dumps(
                {
                    "stages": [
                        {"index": 0, "name": "4x4", "start": 0, "end": 16},
                        {"index": 1, "name": "8x8", "start": 16, "end": 30},
                    ]
                }
            )
        )
        assert [(s["name"], s["start"]) for s in read_run(run).stages] == [("4x4", 0), ("8x8", 16)]
        assert '"stages":[{"name":"4x4","start":0},{"name":"8x8","start":16}]' in build_report(
            [run]
        )

    def test_status_and_time_across_a_resume(self, tmp_path: Path) -> None:
        """A run logged to its last step is finished; time_s starting again from 0 (a resumed
        session) adds to the time before."""
        run = read_run(_fake_run(tmp_path / "run"))
        assert run.status == "finished" and run.train_seconds == pytest.approx(3.0)
        lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        more = [json.loads(line) for line in lines[:3]]
        for record in more:
            record["step"] += 30  # steps 35, 40, 45 at 0.5, 1.0, 1.5 s
        (tmp_path / "run" / "metrics.jsonl").write_text(
            "\n".join(lines + [json.dumps(r) for r in more]) + "\n"
        )
        assert read_run(tmp_path / "run").train_seconds == pytest.approx(3.0 + 1.5)

    def test_a_folder_that_is_no_run_is_a_clear_error(self, tmp_path: Path) -> None:
        """build_report names the folder that holds no run."""
        with pytest.raises(FileNotFoundError, match="is not a run directory"):
            build_report([tmp_path])


class TestCommand:
    def _args(self, *argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser(prog="gan")
        add_parser(parser.add_subparsers(dest="command"))
        return parser.parse_args(["report", *argv])

    def test_writes_report_html_into_the_run(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`gan report RUN` writes RUN/report.html and prints its path."""
        run = _fake_run(tmp_path / "run")
        assert run_command(self._args(str(run))) == 0
        assert capsys.readouterr().out.strip() == str(run / "report.html")
        assert "Run hand" in (run / "report.html").read_text()

    def test_compares_runs_into_out(self, tmp_path: Path) -> None:
        """`gan report A B --out FILE` writes one page comparing both."""
        a, b = _fake_run(tmp_path / "a", "alpha"), _fake_run(tmp_path / "b", "beta")
        out = tmp_path / "both.html"
        assert run_command(self._args(str(a), str(b), "--out", str(out))) == 0
        assert "Comparison: alpha, beta" in out.read_text()

    def test_not_a_run_directory_is_exit_2_and_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A folder without a run: exit status 2, one line naming it."""
        assert run_command(self._args(str(tmp_path))) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a run directory" in err and str(tmp_path) in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo run, 6 steps: a metric, grids at steps 0, 2, 4, 6 and the reals."""
    folder = tmp_path_factory.mktemp("report")
    train(_demo(), folder / "run", progress=False)
    return folder / "run"


@pytest.mark.slow
class TestTrainingWritesTheReport:
    def test_a_finished_run_has_its_report(self, trained: Path) -> None:
        """Training ends by writing report.html: finished, four grids, the metric and the
        environment the run recorded."""
        text = (trained / "report.html").read_text()
        assert "finished" in text and "6 / 6" in text
        steps = [int(s) for s in re.findall(r'"step":(\d+),"src"', text)]
        assert steps == [0, 2, 4, 6]
        assert "fid.fd-digits" in text and "extractor_weights_sha256" in text
        sessions = json.loads((trained / "environment.json").read_text())["sessions"]
        assert len(sessions) == 1
        environment = sessions[0]
        assert environment["gancore"] in text and environment["torch"] == torch.__version__

    def test_report_every_rewrites_it_during_training(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """report_every = 2 with grids every 2 steps: written at steps 4 and 6 (the end);
        report = false: never."""
        from gancore._rundir import RunFiles

        written: list[int] = []
        original = RunFiles.write_report

        def spy(self: RunFiles) -> None:
            written.append(sum(1 for _ in (self.run_dir / "samples").glob("step-*.png")))
            original(self)

        monkeypatch.setattr(RunFiles, "write_report", spy)
        train(_demo("training.report_every=2"), tmp_path / "a", progress=False)
        assert written == [3, 4]  # grids 0, 2, 4 on disk at step 4; 0..6 at the end
        written.clear()
        train(_demo("training.report=false"), tmp_path / "b", progress=False)
        assert written == [] and not (tmp_path / "b" / "report.html").exists()

    def test_a_failing_report_is_a_warning_not_a_crash(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An exception while building the page warns and the run still finishes."""
        import gancore._report

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(gancore._report, "write_report", broken)
        with pytest.warns(
            UserWarning, match=r"report.html: not written \(RuntimeError: disk on fire\)"
        ):
            result = train(_demo(), tmp_path / "run", progress=False)
        assert result.step == 6 and not result.interrupted


# -- the page in a real browser -------------------------------------------------------------------

_NO_BROWSER = (
    "no headless browser: {why} (install Playwright with `pip install playwright` and Chromium "
    "with `apt-get install chromium`, or point GANCORE_CHROMIUM at a Chromium binary)"
)


def _chromium() -> str | None:
    """The Chromium to drive: GANCORE_CHROMIUM, else one on PATH; None = Playwright's own."""
    for candidate in (
        os.environ.get("GANCORE_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if candidate:
            return candidate
    return None


def _skip_or_fail(why: str) -> None:
    """Skip with the reason; GANCORE_REQUIRE_BROWSER=1 (CI) makes it a failure."""
    message = _NO_BROWSER.format(why=why)
    if os.environ.get("GANCORE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Playwright, or a skip that says what is missing."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _skip_or_fail("Playwright is not installed")
    executable = _chromium()
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=executable, args=["--no-sandbox"], headless=True
            )
        except Error as exc:
            _skip_or_fail(
                f"Chromium ({executable or 'Playwright download'}) did not start: "
                f"{str(exc).splitlines()[0]}"
            )
        yield launched
        launched.close()


def _open(browser: Any, page_file: Path) -> tuple[Any, list[str], list[str]]:
    """A page showing ``page_file``, the console errors and page errors it logs, and every
    request that left the page (none may)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r: Any) -> None:
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            requests.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(page_file.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, errors, requests


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("L"), dtype=np.float64)


@pytest.mark.slow
class TestInBrowser:
    def test_page_loads_draws_curves_and_images(self, browser: Any, trained: Path) -> None:
        """Headless Chromium opens the trained run's report with no console or page error and
        no network request; the charts and the grids have drawn (non-blank screenshots)."""
        page, errors, requests = _open(browser, trained / "report.html")
        assert errors == [] and requests == []
        charts = page.locator(".chart")
        assert charts.count() >= 2  # loss, scores, fid, ...
        assert page.locator(".chart svg path.curve").count() >= 4
        chart = _pixels(charts.first.locator("svg").screenshot())
        assert chart.std() > 10 and (chart < 128).mean() > 0.002  # lines drawn on white
        for selector in ("#grid-0", "#reals-0"):
            image = page.locator(selector)
            assert image.evaluate("img => img.complete && img.naturalWidth > 0")
            assert _pixels(image.screenshot()).std() > 5
        page.close()

    def test_slider_changes_the_grid(self, browser: Any, trained: Path) -> None:
        """Moving the slider to the first grid shows step 0: another image, other pixels."""
        page, errors, _ = _open(browser, trained / "report.html")
        image = page.locator("#grid-0")
        before_src, before = image.get_attribute("src"), image.screenshot()
        assert page.locator("#grid-caption-0").inner_text() == "generated, step 6"
        page.locator("#slider-0").fill("0")
        assert page.locator("#grid-caption-0").inner_text() == "generated, step 0"
        assert image.get_attribute("src") != before_src
        after = image.screenshot()
        assert not np.array_equal(_pixels(before), _pixels(after))
        assert errors == []
        page.close()

    def test_hover_log_scale_and_zoom(self, browser: Any, trained: Path) -> None:
        """Hovering a chart reads out values; 'log' redraws the curves; a drag zooms the steps
        axis and a double-click zooms back out."""
        page, errors, _ = _open(browser, trained / "report.html")
        chart = page.locator(".chart[data-group=loss]")  # several points: log bends them
        svg = chart.locator("svg")
        box = svg.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        assert "step" in chart.locator(".readout").inner_text()
        path = chart.locator("path.curve").first.get_attribute("d")
        chart.locator("input[type=checkbox]").click()
        assert chart.locator("path.curve").first.get_attribute("d") != path
        ticks = chart.locator("svg text").all_inner_texts()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 50)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + 50, steps=4)
        page.mouse.up()
        zoomed = chart.locator("svg text").all_inner_texts()
        assert zoomed != ticks
        svg.dblclick()
        assert chart.locator("svg text").all_inner_texts() == ticks
        assert errors == []
        page.close()

    def test_comparison_page_loads(self, browser: Any, trained: Path, tmp_path: Path) -> None:
        """Two runs on one page: no errors, a slider per run, both runs in the legends."""
        other = _fake_run(tmp_path / "other", "other")
        out = write_report(trained, tmp_path / "compare.html", compare=[other])
        page, errors, requests = _open(browser, out)
        assert errors == [] and requests == []
        assert page.locator("#slider-0").count() == 1 and page.locator("#slider-1").count() == 1
        legends = " ".join(page.locator(".legend").all_inner_texts())
        assert "digits-dcgan: loss/critic" in legends and "other: loss/critic" in legends
        page.close()
