"""The path-length regularizer against its formula, computed from full Jacobians."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from gan_stylegan.generators import StyleGAN2GeneratorOptions, build_stylegan2_generator
from gan_stylegan.regularizers import PathLength, PathLengthOptions
from torch import nn

import gancore
from gancore.protocols import GeneratorRegularizer


def _tiny_generator() -> nn.Module:
    torch.manual_seed(0)
    generator = build_stylegan2_generator(
        StyleGAN2GeneratorOptions(
            latent_dim=4, style_dim=3, mapping_depth=2, channel_base=16, channel_max=2
        ),
        gancore.BuildContext(data_shape=(1, 8, 8)),
    )
    with torch.no_grad():  # noise on, so it is part of what the Jacobian sees
        for name, param in generator.named_parameters():
            if name.endswith("noise.strength"):
                param.fill_(0.3)
    return generator.double().eval()  # eval: fixed noise, so the image is a function of ws


def _expected_lengths(generator: nn.Module, z: torch.Tensor, seed: int) -> torch.Tensor:
    """L_n = sqrt(mean_l sum_d (J_n^T y_n)^2) with J the full Jacobian d image / d ws."""
    with torch.no_grad():
        ws = generator.mapping(z)  # type: ignore[operator]
        images = generator.synthesis(ws)  # type: ignore[operator]
    torch.manual_seed(seed)
    y = torch.randn(images.shape, dtype=torch.float32).double() / math.sqrt(8 * 8)
    jacobian = torch.autograd.functional.jacobian(generator.synthesis, ws)  # type: ignore[arg-type]
    n = ws.shape[0]
    lengths = []
    for k in range(n):
        for other in range(n):  # each image depends on its own ws only
            if other != k:
                assert jacobian[k, ..., other, :, :].abs().max() == 0
        j_k = jacobian[k, ..., k, :, :]  # [C, H, W, L, D]
        projected = (y[k][..., None, None] * j_k).sum(dim=(0, 1, 2))  # J^T y: [L, D]
        lengths.append(torch.sqrt((projected**2).sum(dim=1).mean()))
    return torch.stack(lengths)


class TestPathLength:
    def test_is_a_generator_regularizer_with_the_papers_defaults(self) -> None:
        """Defaults: weight 2, decay 0.01, batch shrink 2, every 4 generator steps."""
        reg = PathLength(PathLengthOptions())
        assert isinstance(reg, GeneratorRegularizer)
        assert reg.player == "generator"
        assert (reg.weight, reg.decay, reg.batch_shrink, reg.interval) == (2.0, 0.01, 2, 4)
        assert reg.pl_mean.item() == 0.0

    def test_penalty_and_running_mean_match_the_formula(self) -> None:
        """a <- a + 0.01 (mean L - a); penalty = 2 mean (L - a)^2 on the first N/2 latents."""
        generator = _tiny_generator()
        reg = PathLength(PathLengthOptions()).double()
        a = 0.0
        for seed, z in ((11, torch.randn(6, 4)), (12, torch.randn(4, 4))):
            z = z.double()
            torch.manual_seed(seed)
            penalty = reg.penalty(generator, z)
            lengths = _expected_lengths(generator, z[: z.shape[0] // 2], seed)
            a = a + 0.01 * (lengths.mean().item() - a)
            assert reg.pl_mean.item() == pytest.approx(a, rel=1e-9)
            expected = 2.0 * ((lengths - a) ** 2).mean()
            assert penalty.item() == pytest.approx(expected.item(), rel=1e-9)
            assert lengths.min() > 0

    def test_penalty_trains_the_generator(self) -> None:
        """The penalty is differentiable: every synthesis layer's weight gets a gradient."""
        generator = _tiny_generator().train()
        reg = PathLength(PathLengthOptions(weight=1.0, decay=1.0)).double()
        reg.pl_mean.fill_(10.0)  # far from the lengths, so the penalty is large
        reg.penalty(generator, torch.randn(4, 4).double()).backward()
        for name, param in generator.named_parameters():
            if name.endswith("conv.weight"):
                assert param.grad is not None, name
                assert param.grad.abs().sum() > 0, name

    def test_batch_shrink_uses_the_first_latents(self) -> None:
        """Only the first max(1, N // batch_shrink) latents enter the penalty."""
        generator = _tiny_generator()
        reg = PathLength(PathLengthOptions(batch_shrink=4)).double()
        z = torch.randn(8, 4).double()
        torch.manual_seed(3)
        lengths = reg.path_lengths(generator, z)
        assert lengths.shape == (2,)
        torch.manual_seed(3)
        whole = PathLength(PathLengthOptions(batch_shrink=1)).path_lengths(generator, z[:2])
        torch.testing.assert_close(whole, lengths)
        assert reg.path_lengths(generator, z[:3]).shape == (1,)  # never an empty batch

    def test_running_mean_is_in_the_state_dict(self) -> None:
        """pl_mean is a buffer: state_dict / load_state_dict carry it (checkpoints, resume)."""
        reg = PathLength(PathLengthOptions())
        reg.pl_mean.fill_(0.25)
        other = PathLength(PathLengthOptions())
        other.load_state_dict(reg.state_dict())
        assert list(reg.state_dict()) == ["pl_mean"]
        assert other.pl_mean.item() == 0.25

    def test_needs_a_style_based_generator(self) -> None:
        """A generator without mapping(z) and synthesis(ws) is a one-line error."""
        reg = PathLength(PathLengthOptions())
        with pytest.raises(ValueError, match="path-length") as exc:
            reg.penalty(nn.Linear(4, 4), torch.randn(2, 4))
        assert str(exc.value) == (
            "path-length: generator Linear has no mapping(z) and synthesis(ws) methods; use a "
            "style-based generator ('stylegan', 'stylegan2')"
        )


DCGAN_WITH_PATH_LENGTH = """
[run]
steps = 10

[data]
name = "digits"
resolution = 8
limit = 32

[generator]
name = "dcgan"
channels = 4

[critic]
name = "dcgan"
channels = 4

[[regularizers]]
name = "path-length"
"""


class TestPathLengthCheck:
    """path-length refuses a generator without mapping and synthesis when the run is built."""

    def test_check(self) -> None:
        """check() names the generator without mapping/synthesis and accepts a style-based one."""
        reg = PathLength(PathLengthOptions())
        reg.check({"generator": {"generator": _tiny_generator()}, "critic": {}})
        with pytest.raises(ValueError, match="path-length") as exc:
            reg.check({"generator": {"g_ab": nn.Linear(4, 4)}})
        assert str(exc.value) == (
            "path-length: generator 'g_ab' (Linear) has no mapping(z) and synthesis(ws) methods; "
            "use a style-based generator ('stylegan', 'stylegan2')"
        )

    def test_dcgan_run_is_refused_before_training(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """gan train of a DCGAN run with path-length exits 2 with one line and writes nothing."""
        from gancore._cli import main

        (tmp_path / "run.toml").write_text(DCGAN_WITH_PATH_LENGTH)
        run_dir = tmp_path / "out"
        assert main(["train", str(tmp_path / "run.toml"), "--run-dir", str(run_dir)]) == 2
        assert capsys.readouterr().err == (
            f"error: {tmp_path / 'run.toml'}: regularizers: path-length: generator 'generator' "
            "(DCGANGenerator) has no mapping(z) and synthesis(ws) methods; use a style-based "
            "generator ('stylegan', 'stylegan2')\n"
        )
        assert not run_dir.exists()
