"""gan interpolate: slerp and lerp, the walk through z or w, and the GIF, MP4 and PNG files."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, cast

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import gancore
from gancore._build import Built
from gancore._cli import main
from gancore._datarecord import RecordedData
from gancore._inference import LoadedRun, load_run
from gancore._interpolate import (
    MappedGenerator,
    frame_count,
    frame_pictures,
    lerp,
    slerp,
    walk,
    write_walk,
)
from gancore._train import train
from tests.conftest import MISBEHAVING_TEST_PLUGINS

RUN = """
[run]
name = "tiny"
steps = 2
[data]
name = "npz"
path = "images.npz"
[generator]
name = "dcgan"
latent_dim = 4
channels = 4
[critic]
name = "dcgan"
channels = 4
[training]
batch_size = 4
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step DCGAN run on 8x8 grey images."""
    root = tmp_path_factory.mktemp("interpolate")
    pixels = np.random.default_rng(0).integers(0, 256, size=(16, 1, 8, 8), dtype=np.uint8)
    np.savez(root / "images.npz", x=pixels)
    (root / "run.toml").write_text(RUN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCORE_DISABLE_PLUGINS", MISBEHAVING_TEST_PLUGINS)
        patch.chdir(root)
        gancore.reset_registry()
        torch.manual_seed(0)
        train(gancore.load_config("run.toml"), root / "run", progress=False)
        gancore.reset_registry()
    return root / "run"


def _angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    cosine = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return torch.arccos(cosine.clamp(-1, 1))


class TestLerp:
    def test_endpoints_are_exact(self) -> None:
        """t = 0 gives a and t = 1 gives b, bit for bit."""
        a, b = torch.randn(3, 5), torch.randn(3, 5)
        assert torch.equal(lerp(a, b, 0.0), a)
        assert torch.equal(lerp(a, b, 1.0), b)

    def test_midpoint(self) -> None:
        """t = 0.25 is a quarter of the way."""
        a, b = torch.zeros(2), torch.tensor([4.0, -8.0])
        assert torch.equal(lerp(a, b, 0.25), torch.tensor([1.0, -2.0]))


class TestSlerp:
    def test_endpoints_are_exact(self) -> None:
        """t = 0 gives a and t = 1 gives b, bit for bit, in a's dtype."""
        a, b = torch.randn(4, 16), torch.randn(4, 16)
        assert torch.equal(slerp(a, b, 0.0), a)
        assert torch.equal(slerp(a, b, 1.0), b)
        assert slerp(a, b, 0.5).dtype == torch.float32

    def test_unit_vectors_stay_on_the_sphere_at_an_angle_linear_in_t(self) -> None:
        """Between unit vectors the path has norm 1 and angle t * omega from a."""
        a = torch.nn.functional.normalize(torch.randn(3, 8, dtype=torch.float64), dim=-1)
        b = torch.nn.functional.normalize(torch.randn(3, 8, dtype=torch.float64), dim=-1)
        omega = _angle(a, b)
        for t in (0.1, 0.3, 0.5, 0.9):
            point = slerp(a, b, t)
            assert torch.allclose(point.norm(dim=-1), torch.ones(3, dtype=torch.float64))
            assert torch.allclose(_angle(a, point), t * omega, atol=1e-9)
            assert torch.allclose(_angle(point, b), (1 - t) * omega, atol=1e-9)

    def test_closed_form_on_a_quarter_circle(self) -> None:
        """From e1 to e2, the point at t is (cos(t pi/2), sin(t pi/2))."""
        a, b = (
            torch.tensor([1.0, 0.0], dtype=torch.float64),
            torch.tensor([0.0, 1.0], dtype=torch.float64),
        )
        t = 1 / 3
        expected = torch.tensor(
            [math.cos(t * math.pi / 2), math.sin(t * math.pi / 2)], dtype=torch.float64
        )
        assert torch.allclose(slerp(a, b, t), expected, atol=1e-15)

    def test_norms_are_interpolated_between_unequal_vectors(self) -> None:
        """Parallel vectors of norms 1 and 3 (no angle) fall back to the straight line."""
        a = torch.tensor([1.0, 0.0])
        assert torch.equal(slerp(a, 3 * a, 0.5), torch.tensor([2.0, 0.0]))


# -------------------------------------------------------------------------------------------------
# The walk on hand-written tasks with known answers
# -------------------------------------------------------------------------------------------------


class ShiftTask:
    """Conditional: sample of (z, label) is a 1x2x2 image filled with z[0] + 10 * label."""

    conditional: ClassVar[bool] = True

    def sample_inputs(
        self,
        generators: Mapping[str, nn.Module],
        dataset: Any,
        num: int,
        seed: int,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        z = torch.randn(num, 3, generator=torch.Generator().manual_seed(seed))
        return {"z": z, "label": labels if labels is not None else torch.arange(num) % 3}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        value = inputs["z"][:, 0] + 10 * inputs["label"]
        return gancore.SampleGrid(images=value[:, None, None, None].expand(-1, 1, 2, 2))


class DoubledLatent(nn.Module):
    """A generator with a w space: mapping(z) = 2 z, synthesis(w) = tanh(A w / 2) as 1x2x2."""

    latent_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return 2 * z

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(ws / 2)).view(-1, 1, 2, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.mapping(z))


class ThreeClasses:
    """Three labelled 1x2x2 images, one of each class."""

    shapes: ClassVar[dict[str, tuple[int, ...]]] = {"x": (1, 2, 2), "label": ()}
    classes = ("a", "b", "c")
    labels = torch.arange(3)

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": torch.zeros(1, 2, 2), "label": self.labels[index]}


def _loaded(task: Any, generator: nn.Module, dataset: Any = None) -> LoadedRun:
    """A LoadedRun of ``task`` with one generator, on ``dataset`` (default: recorded data of
    1x2x2 images)."""
    if dataset is None:
        dataset = RecordedData("test", {"x": (1, 2, 2)}, 10, reason="test")
    players = {"generator": {"generator": generator}}
    built = Built(dataset, task, players, {}, None, [], None, [])  # type: ignore[arg-type]
    config = SimpleNamespace(
        task=SimpleNamespace(spec=SimpleNamespace(name="test-task")),
        generator=SimpleNamespace(name="test:generator"),
        run=SimpleNamespace(name="test"),
    )
    return LoadedRun(
        config=cast(Any, config),
        built=built,
        generators=players["generator"],
        generator_kind="raw",
        checkpoint=Path("test"),
        device=torch.device("cpu"),
    )


class TestWalk:
    def test_frame_count(self) -> None:
        """(seeds - 1) * steps + 1 frames: each segment's steps, then the last seed."""
        assert frame_count(3, 4) == 9
        assert frame_count(2, 1) == 2

    def test_ends_are_the_seeds_samples(self, trained: Path) -> None:
        """Frame 0 is sample 0 of generate(seed 0), the last frame that of the last seed, and
        spherical walks share their ends with linear ones."""
        run = load_run(trained)
        for spherical in (False, True):
            frames = walk(run, [5, 0, 2], 3, spherical=spherical)
            assert frames.shape == (7, 1, 1, 8, 8)
            assert torch.equal(frames[0, 0], run.generate(1, seed=5)[0])
            assert torch.equal(frames[3, 0], run.generate(1, seed=0)[0])
            assert torch.equal(frames[-1, 0], run.generate(1, seed=2)[0])

    def test_each_class_walks_the_same_latents(self) -> None:
        """Row k of a frame is the walk of class k: z's first value plus 10 k, labels held."""
        run = _loaded(ShiftTask(), nn.Identity(), ThreeClasses())
        frames = walk(run, [1, 2], 4, labels=[0, 1, 2])
        assert frames.shape == (5, 3, 1, 2, 2)
        ends = [run.context(label=0).generate(1, 1, seed) for seed in (1, 2)]
        z0, z1 = (next(iter(end))[0, 0, 0, 0] for end in ends)
        for f, t in enumerate([0.0, 0.25, 0.5, 0.75, 1.0]):
            for k in range(3):
                expected = (1 - t) * z0 + t * z1 + 10 * k
                assert torch.allclose(frames[f, k], expected.expand(1, 2, 2), atol=1e-6)
        for k in range(3):  # the ends are the class's generated samples, exactly
            assert torch.equal(frames[0, k], next(iter(run.context(label=k).generate(1, 1, 1)))[0])

    def test_w_walk_of_a_linear_mapping_equals_the_z_walk(self) -> None:
        """With w = 2 z, linear walks in w and z give the same frames; ends are exact."""
        generator = DoubledLatent()
        assert isinstance(generator, MappedGenerator)
        run = _loaded(gancore.Unconditional(), generator)
        in_w = walk(run, [0, 1, 2], 4, space="w")
        in_z = walk(run, [0, 1, 2], 4, space="z")
        assert torch.allclose(in_w, in_z, atol=1e-6)
        # equal up to rounding: a matmul's result may depend on its batch size
        assert torch.allclose(in_w[0, 0], run.generate(1, seed=0)[0], atol=1e-6)

    def test_w_needs_a_mapping_network(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A generator without mapping and synthesis is named in one line."""
        generator = nn.Sequential(nn.Linear(3, 4), nn.Unflatten(1, (1, 2, 2)))
        generator.latent_dim = 3  # type: ignore[assignment]
        run = _loaded(gancore.Unconditional(), generator)
        with pytest.raises(gancore.ConfigError) as exc:
            walk(run, [0, 1], 2, space="w")
        assert str(exc.value) == (
            "--space w: generator 'test:generator' ('generator' (Sequential)) has no mapping(z) "
            "and synthesis(w) methods, so no w space; use --space z"
        )

    def test_needs_two_seeds(self) -> None:
        """One seed is no walk."""
        run = _loaded(gancore.Unconditional(), DoubledLatent())
        with pytest.raises(gancore.ConfigError, match="--seeds: give at least two seeds"):
            walk(run, [0], 4)


# -------------------------------------------------------------------------------------------------
# Files
# -------------------------------------------------------------------------------------------------


def _distinct_frames(num: int, tiles: int) -> torch.Tensor:
    """``[num, tiles, 1, 8, 8]`` frames, each a different grey level."""
    levels = torch.linspace(-1, 1, num)
    return levels[:, None, None, None, None].expand(num, tiles, 1, 8, 8).clone()


class TestFiles:
    def test_gif_frames_size_and_loop(self, tmp_path: Path) -> None:
        """An animated GIF with every frame, looping, each 8x8 tile padded by 2 and enlarged
        to at least 128 px."""
        out = tmp_path / "walk.gif"
        assert write_walk(_distinct_frames(9, 1), out, fps=10) == 9
        with Image.open(out) as image:
            assert image.n_frames == 9
            assert image.size == (132, 132)  # 12 px * 11
            assert image.info["loop"] == 0
            assert image.info["duration"] == 100

    def test_tiles_of_classes_in_a_grid(self) -> None:
        """Ten class tiles make a 4 x 3 grid; --scale sets the enlargement."""
        pictures = frame_pictures(_distinct_frames(2, 10), scale=2)
        assert len(pictures) == 2
        assert pictures[0].size == (4 * 12 * 2, 3 * 12 * 2)

    def test_png_strip(self, tmp_path: Path) -> None:
        """A .png is a strip, one column per frame."""
        out = tmp_path / "strip.png"
        assert write_walk(_distinct_frames(5, 1), out) == 5
        with Image.open(out) as image:
            width, height = image.size
        assert width == 5 * height  # one row of five square tiles

    def test_wrong_extension(self, tmp_path: Path) -> None:
        """Only .gif, .mp4 and .png are written."""
        with pytest.raises(gancore.ConfigError) as exc:
            write_walk(_distinct_frames(2, 1), tmp_path / "walk.avi")
        assert str(exc.value) == (
            f"--out: expected a .gif, .mp4 or .png file (got '{tmp_path / 'walk.avi'}')"
        )

    def test_mp4_without_a_writer_suggests_a_gif(
        self,
        trained: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Without imageio-ffmpeg, .mp4 is one line that suggests .gif, before any work."""
        monkeypatch.setattr("gancore._interpolate.mp4_writer", lambda: None)
        out = tmp_path / "walk.mp4"
        assert main(["interpolate", str(trained), "--out", str(out)]) == 2
        assert capsys.readouterr().err == (
            f"error: --out {out}: writing MP4 needs an FFmpeg writer (pip install imageio "
            "imageio-ffmpeg); or write an animated .gif\n"
        )

    def test_mp4(self, tmp_path: Path) -> None:
        """With imageio-ffmpeg installed, an MP4 of every frame, padded to even sizes."""
        ffmpeg = pytest.importorskip("imageio_ffmpeg")
        out = tmp_path / "walk.mp4"
        assert write_walk(_distinct_frames(6, 1), out, fps=6, scale=3) == 6
        assert ffmpeg.count_frames_and_secs(str(out)) == (6, 1.0)

    def test_points_are_not_drawn(self, tmp_path: Path) -> None:
        """2-D points are refused in one line naming the task."""
        with pytest.raises(gancore.ConfigError, match="task 'toy' makes samples of shape \\[2\\]"):
            write_walk(torch.zeros(3, 1, 2), tmp_path / "w.gif", task_name="toy")


class TestCommand:
    def test_writes_a_gif(
        self, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """gan interpolate writes (seeds - 1) * steps + 1 frames whose first is seed 0's sample."""
        out = tmp_path / "walk.gif"
        args = ["interpolate", str(trained), "--seeds", "0", "1", "2", "--steps", "3"]
        assert main([*args, "--spherical", "--out", str(out), "--scale", "1"]) == 0
        assert capsys.readouterr().out == (f"wrote {out} (7 frames, spherical in z, seeds 0 1 2)\n")
        with Image.open(out) as image:
            assert image.size == (12, 12)
            count = image.n_frames
            first = np.asarray(image.convert("L"))
        assert count <= 7  # the GIF writer merges identical neighbours
        sample = load_run(trained).generate(1, seed=0)[0, 0].clamp(-1, 1)
        expected = ((sample + 1) * 127.5).round().to(torch.uint8).numpy()
        assert (first[2:10, 2:10] == expected).all()

    def test_default_output_in_the_run(
        self, trained: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --out the walk goes to RUN/samples/walk-SPACE-SEEDS.gif."""
        assert main(["interpolate", str(trained), "--seeds", "3", "4", "--steps", "2"]) == 0
        assert (trained / "samples" / "walk-z-3-4.gif").is_file()

    def test_class_of_an_unconditional_run(
        self, trained: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--class needs a conditional task."""
        assert main(["interpolate", str(trained), "--class", "1"]) == 2
        assert capsys.readouterr().err == (
            "error: task 'unconditional' is not conditional; --class needs a conditional task\n"
        )


class TestWalkLabels:
    def test_rows(self) -> None:
        """Every class of a conditional task, one class with --class, one row otherwise."""
        from gancore._interpolate import walk_labels

        conditional = _loaded(ShiftTask(), nn.Identity(), ThreeClasses())
        assert walk_labels(conditional, None) == ([0, 1, 2], ("a", "b", "c"))
        assert walk_labels(conditional, 1) == ([1], ("b",))
        plain = _loaded(gancore.Unconditional(), DoubledLatent())
        assert walk_labels(plain, None) == ([None], None)


class TestCommandErrors:
    def test_w_of_a_dcgan_is_the_documented_line(
        self, trained: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--space w on a DCGAN is the line docs/using_a_trained_model.md quotes."""
        assert main(["interpolate", str(trained), "--space", "w"]) == 2
        err = capsys.readouterr().err
        assert err == (
            "error: --space w: generator 'gancore:dcgan' ('generator' (DCGANGenerator)) has no "
            "mapping(z) and synthesis(w) methods, so no w space; use --space z\n"
        )
        page = Path(__file__).parents[1] / "docs" / "using_a_trained_model.md"
        assert err.strip() in page.read_text()
