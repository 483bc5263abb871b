"""``gan upscale``: the receptive-field radius, tiled upscaling and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gan_superres.command import receptive_radius, upscale_image
from gan_superres.networks import SRResNet, SRResNetOptions
from gan_superres.task import upscale
from PIL import Image
from torch import nn

import gancore
import gancore.testing as gt
from gancore._cli import main

# A tiny srgan run: x2, one residual block (receptive radius 2 x 1 + 8 = 10 LR pixels), no
# content loss (no feature extractor needed), one MSE step and one adversarial step.
SR_RUN = gt.tiny_run(
    steps=2,
    data={"name": "sr-images", "images": ["skimage:camera"], "size": 32},
    task={"name": "srgan", "scale": 2, "content_weight": 0.0},
    generator={"name": "srresnet", "blocks": 1, "channels": 8},
    critic={"name": "srgan", "channels": 4, "dense": 16},
    loss={"name": "non-saturating"},
)
RADIUS = 10
Capture = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny srgan run, trained once for the module with this plugin alone."""
    run = tmp_path_factory.mktemp("srgan") / "run"
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCORE_LOAD_PLUGINS", "gan-superres")
        patch.delenv("GANCORE_DISABLE_PLUGINS", raising=False)
        torch.set_num_threads(1)
        gancore.reset_registry()
        try:
            gt.check_training(SR_RUN, run)
        finally:
            gancore.reset_registry()
            torch.set_num_threads(threads)
    return run


@pytest.fixture
def generator(run_dir: Path) -> nn.Module:
    return gancore.load_run(run_dir).generators["generator"]


def _lr(height: int, width: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=gen) * 2 - 1


def _png(path: Path, width: int, height: int, mode: str = "RGB", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    shape = (height, width) if mode == "L" else (height, width, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(path)
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image).astype(np.int16)


class TestReceptiveRadius:
    def test_paper_network(self) -> None:
        """The paper's srresnet (16 blocks, 64 channels) reaches 40 LR pixels at x2 and x4."""
        for scale in (2, 4):
            assert receptive_radius(SRResNet(3, scale, SRResNetOptions())) == 40

    @pytest.mark.parametrize(("scale", "blocks"), [(2, 1), (4, 1), (2, 16), (4, 16)])
    def test_is_where_the_gradient_ends(self, scale: int, blocks: int) -> None:
        """The input gradient of one LR pixel's output block is non-zero exactly within
        2 x blocks + 8 LR pixels of it, along both axes (channels do not change the reach)."""
        torch.manual_seed(0)
        net = SRResNet(3, scale, SRResNetOptions(blocks=blocks, channels=4)).eval()
        radius = receptive_radius(net)
        assert radius == 2 * blocks + 8
        centre = radius + 3
        x = (torch.rand(1, 3, 2 * centre + 1, 2 * centre + 1) * 2 - 1).requires_grad_()
        block = slice(centre * scale, (centre + 1) * scale)
        net(x)[..., block, block].sum().backward()
        assert x.grad is not None
        reached = x.grad.abs().sum((0, 1)).nonzero() - centre
        assert reached.min(0).values.tolist() == [-radius, -radius]
        assert reached.max(0).values.tolist() == [radius, radius]

    def test_unknown_for_other_networks(self) -> None:
        assert receptive_radius(nn.Conv2d(3, 3, 3, padding=1)) is None


class TestUpscaleImage:
    def test_tiled_equals_one_pass(self, generator: nn.Module) -> None:
        """8x8 tiles with an overlap of the receptive radius give the one-pass result, which is
        the generator's output clamped; edge tiles are partial (37x29 is no multiple of 8)."""
        lr = _lr(37, 29)
        one_pass = upscale_image(generator, lr, 2, tile=0, overlap=0)
        assert one_pass.shape == (1, 3, 74, 58)
        assert torch.equal(one_pass, upscale(generator, lr))
        for tile, overlap in ((8, RADIUS), (5, RADIUS + 7), (16, RADIUS)):
            tiled = upscale_image(generator, lr, 2, tile=tile, overlap=overlap)
            torch.testing.assert_close(tiled, one_pass, atol=1e-5, rtol=0)

    def test_less_overlap_shows_seams(self, generator: nn.Module) -> None:
        """One pixel short of the receptive radius the tiles differ from the one pass, so the
        comparison above can fail; with no overlap they differ grossly."""
        lr = _lr(37, 29)
        one_pass = upscale_image(generator, lr, 2, tile=0, overlap=0)
        short = upscale_image(generator, lr, 2, tile=8, overlap=RADIUS - 1)
        assert (short - one_pass).abs().max() > 1e-4
        seams = upscale_image(generator, lr, 2, tile=8, overlap=0)
        assert (seams - one_pass).abs().max() > 1e-2

    def test_reports_each_tile(self, generator: nn.Module) -> None:
        """on_tile hears of every tile, row by row, with its LR pixels."""
        seen: list[int] = []
        upscale_image(generator, _lr(10, 7), 2, tile=4, overlap=2, on_tile=seen.append)
        assert seen == [16, 12, 16, 12, 8, 6]

    def test_refuses_bad_inputs(self, generator: nn.Module) -> None:
        with pytest.raises(ValueError, match=r"expected lr of shape \[1, C, h, w\] \(got \(2, 3"):
            upscale_image(generator, torch.zeros(2, 3, 4, 4), 2)
        with pytest.raises(ValueError, match=r"must be >= 0 \(got -1, 0\)"):
            upscale_image(generator, torch.zeros(1, 3, 4, 4), 2, tile=-1, overlap=0)
        with pytest.raises(ValueError, match="scale 4 needs 16x16"):
            upscale_image(generator, torch.zeros(1, 3, 4, 4), 4)
        generator.train()
        with pytest.raises(ValueError, match=r"in training mode; call \.eval\(\) first"):
            upscale_image(generator, torch.zeros(1, 3, 4, 4), 2)


def _upscale(run_dir: Path, arguments: str) -> int:
    """``gan upscale RUN_DIR ARGUMENTS`` (split at spaces) through gancore's command line."""
    return main(["upscale", str(run_dir), *arguments.split()])


class TestCommand:
    @pytest.fixture(autouse=True)
    def _in_tmp_path(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Relative paths land in the test's own folder."""
        monkeypatch.chdir(tmp_path)

    def test_a_file(self, run_dir: Path, generator: nn.Module, capsys: Capture) -> None:
        """`gan upscale RUN --input a.png --output out.png` writes the 8-bit one-pass result at
        twice the size; an existing folder as --output gets a.png."""
        image = _png(Path("a.png"), 29, 37)
        assert _upscale(run_dir, "--input a.png --output out.png") == 0
        assert capsys.readouterr().out.startswith("wrote out.png (x2, step-0000002, raw weights")
        written = _pixels(Path("out.png"))
        assert written.shape == (74, 58, 3)
        lr = torch.from_numpy(_pixels(image)).permute(2, 0, 1)[None].float() / 127.5 - 1
        expected = ((upscale_image(generator, lr, 2, 0, 0)[0] + 1) * 127.5).round()
        assert np.abs(written - expected.permute(1, 2, 0).numpy()).max() <= 1
        Path("out").mkdir()
        assert _upscale(run_dir, "--input a.png --output out") == 0
        assert np.array_equal(_pixels(Path("out/a.png")), written)

    def test_a_folder(self, run_dir: Path, capsys: Capture) -> None:
        """Every image of a folder (grey ones too) becomes NAME.png in the run's RGB at twice the
        size; other files are skipped; tiles give the one-pass images; plain progress lines go
        to stderr when it is no terminal."""
        _png(Path("in/a.png"), 29, 37)
        _png(Path("in/b.jpg"), 50, 20, mode="L", seed=1)
        Path("in/notes.txt").write_text("not an image")
        assert _upscale(run_dir, "--input in --output tiled --tile 8") == 0
        assert _upscale(run_dir, "--input in --output whole --tile 0") == 0
        assert sorted(p.name for p in Path("tiled").iterdir()) == ["a.png", "b.png"]
        assert _pixels(Path("tiled/a.png")).shape == (74, 58, 3)
        assert _pixels(Path("tiled/b.png")).shape == (40, 100, 3)
        for name in ("a.png", "b.png"):
            assert np.array_equal(_pixels(Path("tiled", name)), _pixels(Path("whole", name)))
        captured = capsys.readouterr()
        lines = captured.err.splitlines()
        assert lines[0].startswith("image 1/2 a.png: 29x37 -> 58x74, 20 tile(s) | ")
        assert lines[1].startswith("image 2/2 b.jpg: 50x20 -> 100x40, 21 tile(s) | ")
        assert "px/s | eta " in lines[1]
        assert captured.out.startswith("wrote 2 images to tiled (x2, step-0000002, raw weights, ")

    def test_progress_bar(self, run_dir: Path, capsys: Capture) -> None:
        """--progress bar shows tqdm's bar, with its rate, over the LR pixels of all tiles."""
        _png(Path("a.png"), 12, 10)
        assert _upscale(run_dir, "--input a.png --output b.png --tile 4 --progress bar") == 0
        err = capsys.readouterr().err
        assert "upscale x2: 100%" in err
        assert "120/120" in err
        assert "px/s" in err
        assert "image 1/1" not in err

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            ("--input nope.png --output o.png", "--input 'nope.png' does not exist"),
            ("--input a.png --output o.png --tile -1", "--tile: must be >= 0 (got -1)"),
            ("--input a.png --output o.png --overlap -3", "--overlap: must be >= 0 (got -3)"),
            (
                "--input a.png --output o.jpg",
                "--output 'o.jpg': give a .png file name (or an existing folder)",
            ),
            ("--input . --output .", "--output would overwrite the input 'a.png'; choose another"),
            ("--input empty --output o", "--input folder 'empty' holds no image file"),
            ("--input bad.png --output o.png", "cannot read image 'bad.png': "),
        ],
        ids=["missing", "tile", "overlap", "not-png", "overwrite", "empty-folder", "unreadable"],
    )
    def test_user_mistakes_are_one_line_errors(
        self, run_dir: Path, capsys: Capture, arguments: str, message: str
    ) -> None:
        """Each exits 2 with one error line and no traceback, and writes nothing."""
        _png(Path("a.png"), 8, 8)
        Path("empty").mkdir()
        Path("bad.png").write_bytes(b"not a png")
        assert _upscale(run_dir, arguments) == 2
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [captured.err.strip()]
        assert captured.err.startswith("error: " + message)
        assert captured.out == ""
        assert sorted(p.name for p in Path().iterdir()) == ["a.png", "bad.png", "empty"]

    def test_not_an_srgan_run(self, capsys: Capture) -> None:
        """A run of another task is refused in one line."""
        gt.check_training(gt.tiny_run(), "toy")
        capsys.readouterr()
        _png(Path("a.png"), 8, 8)
        assert _upscale(Path("toy"), "--input a.png --output o.png") == 2
        assert capsys.readouterr().err.strip() == (
            "error: run 'toy' has task 'unconditional'; gan upscale needs a run of task 'srgan'"
        )
