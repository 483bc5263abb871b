"""Images in trackers and the grids every run starts with: samples/reals.png, the step-0 grid,
and the sample grids in TensorBoard's event files."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import gancore
from gancore._rundir import RunFiles
from gancore._train import train
from gancore.testing import train_interrupted
from tests.conftest import load, write_toml

DIGITS = """
[run]
name = "tiny"
seed = 1
steps = 6
trackers = {trackers}

[data]
name = "digits"
resolution = 8
limit = 64

[generator]
name = "dcgan"
latent_dim = 8
channels = 8
max_channels = 16

[critic]
name = "dcgan"
channels = 8
max_channels = 16

[optimizers.generator]
lr = 2e-3
betas = [0.5, 0.999]

[optimizers.critic]
lr = 2e-3
betas = [0.5, 0.999]

[training]
batch_size = 8
num_samples = 16
log_every = 2
sample_every = 3
checkpoint_every = 3
"""


def _config(tmp_path: Path, trackers: str = "[]", *overrides: str) -> gancore.RunConfig:
    return load(write_toml(tmp_path / "tiny.toml", DIGITS.format(trackers=trackers)), *overrides)


class TestStartGrids:
    def test_a_run_starts_with_reals_and_a_step_0_grid(self, tmp_path: Path) -> None:
        """A fresh run writes samples/reals.png (real digits) and step-0000000.png before its
        first update, besides its interval grids."""
        train(_config(tmp_path), tmp_path / "run", progress=False)
        samples = tmp_path / "run" / "samples"
        assert sorted(p.name for p in samples.iterdir()) == [
            "reals.png",
            "step-0000000.png",
            "step-0000003.png",
            "step-0000006.png",
        ]
        with (
            Image.open(samples / "reals.png") as reals,
            Image.open(samples / "step-0000000.png") as first,
        ):
            # 16 images of 8x8 in a 4x4 grid, both drawn the same way (padding 2, scaled up)
            assert reals.size == first.size
            assert np.asarray(reals).std() > 10  # digits on black, not a blank picture

    @pytest.mark.slow
    def test_the_start_grids_leave_training_unchanged(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Random draws while the reals and the step-0 grid are drawn (a dataset's crops, a
        generator's noise) do not change the trained weights: the random state is forked."""
        plain = train(_config(tmp_path), tmp_path / "a", progress=False)
        write_samples, write_reals = RunFiles.write_samples, RunFiles.write_reals

        def noisy_samples(self: RunFiles, at: int, stage: str | None = None) -> Path:
            if at == 0:
                torch.randn(1000)
            return write_samples(self, at, stage)

        def noisy_reals(self: RunFiles) -> Path | None:
            torch.randn(1000)
            return write_reals(self)

        monkeypatch.setattr(RunFiles, "write_samples", noisy_samples)
        monkeypatch.setattr(RunFiles, "write_reals", noisy_reals)
        noisy = train(_config(tmp_path), tmp_path / "b", progress=False)
        for name, module in plain.generators.items():
            for (key, a), b in zip(
                module.state_dict().items(),
                noisy.generators[name].state_dict().values(),
                strict=True,
            ):
                assert torch.equal(a, b), key

    def test_a_resumed_run_writes_reals_but_no_step_0_grid(self, tmp_path: Path) -> None:
        """Resuming rewrites reals.png, leaves the step-0 grid alone (no new one is drawn) and
        adds its session to environment.json."""
        config = _config(tmp_path)
        train_interrupted(config, tmp_path / "run", 3)
        samples = tmp_path / "run" / "samples"
        first = (samples / "step-0000000.png").stat().st_mtime_ns
        (samples / "reals.png").unlink()
        train(config, tmp_path / "run", resume=True, progress=False)
        assert (samples / "reals.png").is_file()
        assert (samples / "step-0000000.png").stat().st_mtime_ns == first
        # environment.json keeps a session per start, the newest last
        sessions = json.loads((tmp_path / "run" / "environment.json").read_text())["sessions"]
        assert len(sessions) == 2 and sessions[1]["torch"] == torch.__version__


class TestStagesFile:
    def test_a_staged_run_writes_its_stages_for_the_report(self, tmp_path: Path) -> None:
        """stages.json lists each stage's name and iterations; the report marks the boundary."""
        text = DIGITS.format(trackers="[]") + (
            '\n[[stages]]\nname = "first"\nsteps = 4\n\n[[stages]]\nname = "second"\n'
        )
        train(load(write_toml(tmp_path / "staged.toml", text)), tmp_path / "run", progress=False)
        stages = json.loads((tmp_path / "run" / "stages.json").read_text())["stages"]
        assert [(s["name"], s["start"], s["end"]) for s in stages] == [
            ("first", 0, 4),
            ("second", 4, 6),
        ]
        page = (tmp_path / "run" / "report.html").read_text()
        assert '"stages":[{"name":"first","start":0},{"name":"second","start":4}]' in page


class TestTensorBoardImages:
    def test_event_files_hold_the_grids(self, tmp_path: Path) -> None:
        """With trackers = ["tensorboard"], the event files hold the real grid at step 0 and a
        sample grid at steps 0, 3 and 6, each the PNG written in samples/."""
        pytest.importorskip(
            "tensorboard", reason="tensorboard is not installed (pip install tensorboard)"
        )
        from tensorboard.backend.event_processing.event_accumulator import (  # type: ignore[import-untyped]  # no stubs
            EventAccumulator,
        )

        run_dir = tmp_path / "run"
        train(_config(tmp_path, '["tensorboard"]'), run_dir, progress=False)
        events = list(run_dir.rglob("events.out.tfevents.*"))
        assert events, sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*"))
        accumulator = EventAccumulator(str(events[0].parent), size_guidance={"images": 0})
        accumulator.Reload()
        assert sorted(accumulator.Tags()["images"]) == ["reals", "samples"]
        assert [e.step for e in accumulator.Images("reals")] == [0]
        samples = accumulator.Images("samples")
        assert [e.step for e in samples] == [0, 3, 6]
        # The last event is the picture of samples/step-0000006.png, as RGB.
        with Image.open(io.BytesIO(samples[-1].encoded_image_string)) as logged:
            logged_pixels = np.asarray(logged.convert("RGB"))
        with Image.open(run_dir / "samples" / "step-0000006.png") as written:
            written_pixels = np.asarray(written.convert("RGB"))
        assert (samples[-1].width, samples[-1].height) == (written.width, written.height)
        assert np.array_equal(logged_pixels, written_pixels)
        # The scalars still arrive beside the images.
        assert "loss/critic" in accumulator.Tags()["scalars"]


class _Tracker:
    """A tracker as Accelerate's: a name and log_images, which raises when ``fail``."""

    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail = name, fail
        self.logged: list[tuple[dict[str, Any], int, dict[str, object]]] = []

    def log_images(self, values: dict[str, Any], step: int, **kwargs: object) -> None:
        if self.fail:
            raise RuntimeError("service unavailable")
        self.logged.append((values, step, kwargs))


class TestLogImages:
    def _files(self, tmp_path: Path, trackers: list[object]) -> RunFiles:
        files = RunFiles.__new__(RunFiles)  # only what log_images reads
        files.main = True
        files.config = _config(tmp_path, '["tensorboard"]')
        files.accelerator = type("Accelerator", (), {"trackers": trackers})()
        return files

    def test_each_tracker_gets_the_picture_in_its_shape(self, tmp_path: Path) -> None:
        """TensorBoard a batch [1, H, W, 3] with dataformats NHWC, W&B a list, Aim one
        picture; a tracker without log_images (MLflow) is skipped."""
        picture = tmp_path / "grid.png"
        Image.fromarray(np.arange(6 * 4, dtype=np.uint8).reshape(6, 4), mode="L").save(picture)
        board, wandb, aim = _Tracker("tensorboard"), _Tracker("wandb"), _Tracker("aim")
        mlflow = type("MLflow", (), {"name": "mlflow"})()
        self._files(tmp_path, [board, wandb, aim, mlflow]).log_images("samples", picture, 7)
        ((values, step, kwargs),) = board.logged
        assert step == 7 and kwargs == {"dataformats": "NHWC"}
        assert values["samples"].shape == (1, 6, 4, 3) and values["samples"].dtype == np.uint8
        assert values["samples"][0, 1, 2].tolist() == [6, 6, 6]  # grey as RGB
        assert isinstance(wandb.logged[0][0]["samples"], list)
        assert aim.logged[0][0]["samples"].shape == (6, 4, 3)

    def test_a_failing_tracker_is_a_warning(self, tmp_path: Path) -> None:
        """A tracker that raises is named in a warning; the next tracker still gets the image."""
        picture = tmp_path / "grid.png"
        Image.new("RGB", (4, 4)).save(picture)
        broken, board = _Tracker("wandb", fail=True), _Tracker("tensorboard")
        with pytest.warns(
            UserWarning,
            match=r"tracker 'wandb': could not log image 'reals' at step 0: service unavailable",
        ):
            self._files(tmp_path, [broken, board]).log_images("reals", picture, 0)
        assert len(board.logged) == 1
