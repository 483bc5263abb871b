"""The progressive task: growth at stage starts, blended real data, exact resume mid fade-in and
across a stage boundary, and a short run."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import torch
from gan_progressive.tasks import blend_real

import gancore
import gancore.testing as gt

REPO = Path(__file__).resolve().parents[3]


def _document(steps: int = 6) -> dict[str, Any]:
    """8x8 digits: 2 iterations at 4x4, then 8x8 with alpha 0 -> 1 over its first 2 iterations."""
    return {
        "run": {"name": "tiny-pggan", "seed": 0, "steps": steps},
        "data": {"name": "digits", "resolution": 8, "limit": 64},
        "task": {"name": "progressive"},
        "generator": {"name": "pggan", "latent_dim": 8, "channel_base": 32, "max_channels": 8},
        "critic": {"name": "pggan", "channel_base": 32, "max_channels": 8},
        "loss": {"name": "wgan"},
        "regularizers": [{"name": "wgan-gp", "weight": 10.0}, {"name": "drift", "epsilon": 0.001}],
        "optimizers": {
            "generator": {"name": "adam", "lr": 0.001, "betas": [0.0, 0.99]},
            "critic": {"name": "adam", "lr": 0.001, "betas": [0.0, 0.99]},
        },
        "training": {
            "batch_size": 8,
            "log_every": 1,
            "sample_every": steps,
            "checkpoint_every": steps,
            "num_samples": 8,
            "ema_half_life_images": 100,
        },
        "stages": [
            {"name": "4x4", "steps": 2, "resolution": 4},
            {"name": "8x8", "resolution": 8, "fade_in": 0.5},
        ],
    }


def _config(document: dict[str, Any]) -> gancore.RunConfig:
    return gancore.parse_config(copy.deepcopy(document), gancore.get_registry())


def _weights(result: gancore.TrainResult) -> dict[str, torch.Tensor]:
    out = {}
    for group, modules in (*result.players.items(), ("ema", result.ema)):
        for name, module in modules.items():
            for key, tensor in module.state_dict().items():
                out[f"{group}.{name}.{key}"] = tensor
    return out


class TestBlendReal:
    def test_equals_the_formula(self) -> None:
        """(1 - alpha) * up(avgpool(x)) + alpha * x; alpha 1 returns x itself."""
        x = torch.arange(16.0).view(1, 1, 4, 4)
        low = torch.tensor([[2.5, 4.5], [10.5, 12.5]]).repeat_interleave(2, 0)
        low = low.repeat_interleave(2, 1).view(1, 1, 4, 4)
        assert torch.allclose(blend_real(x, 0.25), 0.75 * low + 0.25 * x)
        assert blend_real(x, 1.0) is x


class TestStages:
    def test_networks_grow_to_each_stage(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """After the run both networks are 8x8; the log shows the stages and alpha ramp; `gan
        sample` names the checkpoint's stage and resolution."""
        from gancore._cli import main

        result = gt.check_training(_document(), tmp_path / "run")
        assert result.generators["generator"].resolution == 8
        assert result.critics["critic"].resolution == 8
        lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        records = [r for r in map(json.loads, lines) if r["event"] == "train"]
        assert [r["stage"] for r in records] == [0, 0, 1, 1, 1, 1]
        assert [r["stage/alpha"] for r in records] == [1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
        # the EMA generator carries the alpha of the last step
        assert float(result.ema["generator"].alpha) == 1.0
        capsys.readouterr()
        assert main(["sample", str(tmp_path / "run"), "--num", "4"]) == 0
        assert "(stage 8x8 (2 of 2), 8x8 px)" in capsys.readouterr().out

    def test_metrics_compare_at_the_stages_resolution(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A metric during the 4x4 stage compares 4x4 samples with the digits at 4x4 (its record
        says so, and that resolution has reference statistics of its own); at 8x8, the data's
        own, the record has no resolution."""
        monkeypatch.setenv("GANCORE_CACHE", str(tmp_path / "cache"))
        document = _document()
        document["metrics"] = [
            {"name": "fid", "extractor": "digits-classifier", "num_generated": 32}
        ]
        document["training"]["metrics_every"] = 2
        gancore.train(_config(document), tmp_path / "run", progress=False)
        lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        metrics = [r for r in map(json.loads, lines) if r["event"] == "metric"]
        assert [(r["step"], r.get("resolution")) for r in metrics] == [(2, 4), (4, None), (6, None)]
        assert all(r["fid.fd-digits"] > 0 for r in metrics)
        stats = list((tmp_path / "cache" / "reference-stats").iterdir())
        assert len(stats) == 2  # the digits at 4x4 and at 8x8

    def test_bad_stage_resolution_is_a_config_error(self, tmp_path: Path) -> None:
        """A resolution that is not a power of two, or shrinks, stops with one line."""
        document = _document()
        document["stages"][1]["resolution"] = 6
        with pytest.raises(gancore.ConfigError, match=r"stages\[1\]\.resolution"):
            gancore.train(_config(document), tmp_path / "a", progress=False)
        document["stages"] = [
            {"steps": 2, "resolution": 8},
            {"resolution": 4},
        ]
        with pytest.raises(gancore.ConfigError, match="cannot shrink"):
            gancore.train(_config(document), tmp_path / "b", progress=False)

    def test_other_networks_are_refused(self, tmp_path: Path) -> None:
        """A generator that cannot grow is named in the error."""
        document = _document()
        document["generator"] = {"name": "dcgan", "latent_dim": 8, "channels": 8}
        with pytest.raises(ValueError, match=r"generator '(gancore:)?dcgan' cannot grow"):
            gancore.train(_config(document), tmp_path / "run", progress=False)


class TestResume:
    @pytest.mark.parametrize(
        "stop_at",
        [
            1,  # before the boundary
            2,  # at the boundary: the checkpoint is the last 4x4 state
            3,  # in the middle of the fade-in (alpha 0.5 at iteration 3)
        ],
    )
    def test_resume_is_exact(self, tmp_path: Path, stop_at: int) -> None:
        """N steps, stop, resume to the end: every weight, buffer and EMA equals a straight run."""
        document = _document()
        straight = gancore.train(_config(document), tmp_path / "straight", progress=False)
        first = gt.train_interrupted(_config(document), tmp_path / "resumed", stop_at)
        assert first.interrupted
        assert first.step == stop_at
        resumed = gancore.train(
            _config(document), tmp_path / "resumed", resume=True, progress=False
        )
        a, b = _weights(straight), _weights(resumed)
        assert a.keys() == b.keys()
        assert [k for k in a if not torch.equal(a[k], b[k])] == []


class TestSampleMidFadeIn:
    def test_gan_sample_says_the_alpha(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Stopped after iteration 3 (alpha 0.5): the EMA generator blends with 0.5 and `gan
        sample` says so."""
        from gancore._cli import main

        gt.train_interrupted(_config(_document()), tmp_path / "run", 4)
        run = gancore.load_run(tmp_path / "run")
        assert float(run.generators["generator"].alpha) == 0.5
        capsys.readouterr()
        assert main(["sample", str(tmp_path / "run"), "--num", "4"]) == 0
        assert "(stage 8x8 (2 of 2), 8x8 px, alpha 0.50)" in capsys.readouterr().out


@pytest.mark.slow
class TestExample:
    def test_example_trains_and_samples(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """examples/pggan-digits.toml, shortened to every stage's first iterations, trains to
        32x32 and `gan sample` names the stage and its resolution."""
        from gancore._cli import main

        document = tomllib.loads((REPO / "examples" / "pggan-digits.toml").read_text())
        document["run"]["steps"] = 40
        for stage in document["stages"][:-1]:
            stage["images"] = 160  # 10 iterations of 16
        document["training"].update(sample_every=10, checkpoint_every=40)
        result = gancore.train(_config(document), tmp_path / "run", progress=False)
        assert result.generators["generator"].resolution == 32
        assert main(["sample", str(tmp_path / "run"), "--num", "4"]) == 0
        assert "32x32" in capsys.readouterr().out
