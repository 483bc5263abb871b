"""gan-stylegan's `gan sample --truncation` and `--style-mixing` against a tiny style generator
with closed forms.

The toy generator maps ``z`` to ``w = z`` (its tracked average ``w_avg`` is a fixed vector) and
draws image pixels as ``tanh(sum_i A_i w_i)`` over ``num_ws = 3`` style inputs, so every mixed or
truncated image can be written down directly.
"""

from __future__ import annotations

import types
from pathlib import Path

import attrs
import gan_stylegan.plugin
import pytest
import torch
from gan_stylegan.sampling import StyleControls, set_truncation, style_mixing_grid
from PIL import Image
from torch import nn

import gancore
from gancore._cli import main

LATENT = 4
NUM_WS = 3


@attrs.frozen(kw_only=True)
class ToyStyleOptions:
    latent_dim: int = attrs.field(default=LATENT, metadata={"doc": "size of z and w"})


class ToyStyle(nn.Module):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape
        self.latent_dim = LATENT
        self.num_ws = NUM_WS
        self.truncation_psi = 1.0
        self.truncation_cutoff: int | None = None
        pixels = int(torch.tensor(shape).prod())
        self.maps = nn.Parameter(torch.randn(NUM_WS, LATENT, pixels) * 0.3)
        self.register_buffer("w_avg", torch.linspace(-0.5, 0.5, LATENT))

    def ws(self, z: torch.Tensor) -> torch.Tensor:
        """``[N, num_ws, latent]`` styles, truncated toward ``w_avg`` as configured."""
        ws = z[:, None, :].expand(-1, NUM_WS, -1)
        cutoff = NUM_WS if self.truncation_cutoff is None else self.truncation_cutoff
        psi = torch.tensor([self.truncation_psi if i < cutoff else 1.0 for i in range(NUM_WS)])
        return self.w_avg + psi[None, :, None] * (ws - self.w_avg)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("nil,ilp->np", ws, self.maps).tanh()
        return out.view(-1, *self.shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.ws(z))

    def mix_styles(self, rows: torch.Tensor, columns: torch.Tensor, crossover: int) -> torch.Tensor:
        a, b = self.ws(rows), self.ws(columns)
        layer = torch.arange(NUM_WS)[None, None, :, None]
        mixed = torch.where(layer < crossover, a[:, None], b[None, :])
        images = self.synthesis(mixed.flatten(0, 1))
        return images.view(rows.shape[0], columns.shape[0], *self.shape)


def build_toy_style(options: ToyStyleOptions, context: gancore.BuildContext) -> ToyStyle:
    return ToyStyle(tuple(context.data_shape))


@gancore.hookimpl
def gancore_register_generators(register: gancore.RegisterCallback) -> None:
    register(
        "toy-style",
        build_toy_style,
        options=ToyStyleOptions,
        description="A linear style generator for tests.",
    )


RUN = """
[run]
steps = 1
[data]
name = "digits"
resolution = 8
[generator]
name = "toy-style"
[critic]
name = "dcgan"
channels = 4
[training]
batch_size = 8
sample_every = 0
num_samples = 4
"""


@pytest.fixture
def registry() -> gancore.Registry:
    module = types.ModuleType("toy_style_plugin")
    module.gancore_register_generators = gancore_register_generators  # type: ignore[attr-defined]
    plugins = [("toy", module), ("gan-stylegan", gan_stylegan.plugin)]
    registry, infos = gancore.load_registry(entry_points=False, plugins=plugins, env={})
    gancore.reset_registry((registry, infos))
    return registry


def train_run(tmp_path: Path, text: str = RUN) -> Path:
    (tmp_path / "run.toml").write_text(text)
    config = gancore.load_config(tmp_path / "run.toml")
    gancore.train(config, tmp_path / "run", progress=False)
    return tmp_path / "run"


def test_toy_generator_satisfies_the_protocol() -> None:
    assert isinstance(ToyStyle((1, 8, 8)), StyleControls)


class TestStyleMixingGrid:
    def test_layout_is_sources_and_mixes(self) -> None:
        """Row 0: column sources; column 0: row sources; cell (i+1, j+1): the crossover mix."""
        torch.manual_seed(0)
        g = ToyStyle((1, 8, 8))
        rows, columns = torch.randn(2, LATENT), torch.randn(3, LATENT)
        grid = style_mixing_grid(g, rows, columns, crossover=1)
        assert grid.shape == (3, 4, 1, 8, 8)
        assert torch.equal(grid[0, 0], torch.full((1, 8, 8), -1.0))
        torch.testing.assert_close(grid[0, 1:], g(columns))
        torch.testing.assert_close(grid[1:, 0], g(rows))
        for i in range(2):
            for j in range(3):
                ws = torch.stack([rows[i], columns[j], columns[j]])[None]
                torch.testing.assert_close(grid[i + 1, j + 1], g.synthesis(ws)[0])


class TestSampleCommand:
    def test_style_mixing_grid_is_written(
        self, registry: gancore.Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--style-mixing writes a (3 + 1) x (3 + 1) grid of 8x8 digits for --num 9."""
        run_dir = train_run(tmp_path)
        capsys.readouterr()  # the training's own report
        out = tmp_path / "mix.png"
        code = main(["sample", str(run_dir), "--style-mixing", "--num", "9", "--out", str(out)])
        assert code == 0
        assert capsys.readouterr().out == (
            f"wrote {out} (rows: layers < 1; columns: layers >= 1)\n"
        )
        # 4 cells of 8 px + 2 px padding each side = 48 px, scaled up 6x to reach 256
        with Image.open(out) as image:
            assert image.size == (288, 288)

    def test_truncation_zero_gives_the_average_image(
        self, registry: gancore.Registry, tmp_path: Path
    ) -> None:
        """psi = 0 maps every latent to w_avg's image; psi = 1 changes nothing."""
        run = gancore.load_run(train_run(tmp_path))
        plain = run.generate(6, seed=1)
        assert set_truncation(run.generators, 1.0) == ["generator"]
        assert torch.equal(run.generate(6, seed=1), plain)
        set_truncation(run.generators, 0.0)
        flat = run.generate(6, seed=1)
        g = run.generators["generator"]
        expected = g.synthesis(g.w_avg.expand(1, NUM_WS, LATENT))  # type: ignore[operator]
        torch.testing.assert_close(flat, expected.expand(6, -1, -1, -1))
        set_truncation(run.generators, 0.0, cutoff=2)  # the last layer keeps its own w
        assert not torch.equal(run.generate(6, seed=1)[0], run.generate(6, seed=1)[1])

    def test_sample_with_truncation_writes_a_grid(
        self, registry: gancore.Registry, tmp_path: Path
    ) -> None:
        run_dir = train_run(tmp_path)
        out = tmp_path / "t.png"
        assert main(["sample", str(run_dir), "--truncation", "0.5", "--out", str(out)]) == 0
        assert out.is_file()

    @pytest.mark.parametrize(
        ("args", "error"),
        [
            (["--truncation", "1.5"], "error: --truncation: must be between 0 and 1 (got 1.5)"),
            (["--truncation-cutoff", "2"], "error: --truncation-cutoff: needs --truncation PSI"),
            (["--crossover", "1"], "error: --crossover: needs --style-mixing"),
            (
                ["--style-mixing", "--crossover", "4"],
                "error: --crossover: must be between 0 and 3 (the style layers of generator "
                "'generator'; got 4)",
            ),
        ],
    )
    def test_bad_options_are_one_line(
        self,
        registry: gancore.Registry,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        args: list[str],
        error: str,
    ) -> None:
        run_dir = train_run(tmp_path)
        capsys.readouterr()
        assert main(["sample", str(run_dir), *args]) == 2
        assert capsys.readouterr().err == error + "\n"

    def test_generators_without_styles_are_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A DCGAN run has neither truncation nor style mixing: one line each, exit 2."""
        text = RUN.replace('name = "toy-style"', 'name = "dcgan"\nchannels = 4')
        run_dir = train_run(tmp_path, text)
        capsys.readouterr()
        assert main(["sample", str(run_dir), "--truncation", "0.7"]) == 2
        assert capsys.readouterr().err == (
            "error: --truncation: no generator of this run supports truncation "
            "(has 'generator' (DCGANGenerator))\n"
        )
        assert main(["sample", str(run_dir), "--style-mixing"]) == 2
        assert capsys.readouterr().err == (
            "error: --style-mixing: needs one style-based generator with num_ws and "
            "mix_styles() (this run has 'generator' (DCGANGenerator))\n"
        )
