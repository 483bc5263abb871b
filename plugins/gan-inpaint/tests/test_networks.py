"""The deepfill generator and critic."""

from __future__ import annotations

import pytest
import torch
from gan_inpaint.networks import (
    DeepFillCriticOptions,
    DeepFillGeneratorOptions,
    build_deepfill_critic,
    build_deepfill_generator,
)

import gancore


def _generator(c: int = 1, size: int = 16, **options: object) -> torch.nn.Module:
    defaults: dict[str, object] = {"channels": 4, "dilations": (2,), "attention_rate": 1}
    opts = DeepFillGeneratorOptions(**(defaults | options))  # type: ignore[arg-type]
    return build_deepfill_generator(
        opts, gancore.BuildContext(data_shape=(c, size, size), input_shape=(c + 1, size, size))
    )


class TestGenerator:
    def test_two_stages_in_range(self) -> None:
        """Coarse and refined outputs have the image's shape and lie in [-1, 1]."""
        g = _generator(3, 16)
        inputs = torch.cat([torch.randn(2, 3, 16, 16) * 3, torch.zeros(2, 1, 16, 16)], dim=1)
        inputs[:, 3:, 4:12, 4:12] = 1.0
        coarse, refined = g(inputs, return_coarse=True)
        assert coarse.shape == refined.shape == (2, 3, 16, 16)
        assert refined.abs().max() <= 1.0
        assert coarse.abs().max() <= 1.0
        assert torch.equal(g(inputs), refined)

    def test_hole_content_is_ignored(self) -> None:
        """Whatever the hole holds in the input, the output is the same."""
        g = _generator(1, 16)
        mask = torch.zeros(1, 1, 16, 16)
        mask[..., 2:10, 3:9] = 1.0
        a = torch.randn(1, 1, 16, 16)
        b = torch.where(mask > 0.5, torch.randn(1, 1, 16, 16), a)
        out_a = g(torch.cat([a, mask], 1))
        out_b = g(torch.cat([b, mask], 1))
        torch.testing.assert_close(out_a, out_b)

    def test_paper_layout_at_64px(self) -> None:
        """The paper's settings (32 channels, dilations 2-16, rate 2) build at 64x64 features."""
        g = _generator(3, 256, channels=32, dilations=(2, 4, 8, 16), attention_rate=2)
        convs = [m for m in g.coarse.modules() if isinstance(m, torch.nn.Conv2d)]
        assert [m.out_channels for m in convs] == [
            32, 64, 64, 128, 128, 128, 128, 128, 128, 128, 128, 128, 64, 64, 32, 16, 3
        ]  # fmt: skip
        assert [m.dilation[0] for m in convs[6:10]] == [2, 4, 8, 16]

    @pytest.mark.parametrize("output", ["clip", "tanh"])
    def test_output_bound_and_its_gradient(self, output: str) -> None:
        """'clip' clamps both stages to [-1, 1] with no gradient beyond the bound; 'tanh' is
        tanh of the same pre-activation, with gradient 1 - tanh^2 everywhere."""
        torch.manual_seed(0)
        g = _generator(1, 16, output=output)
        # the coarse stage's last convolution (no activation after it)
        last = [m for m in g.coarse.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last.bias.fill_(-3.0)  # pre-activations far below -1
        pre: list[torch.Tensor] = []
        last.register_forward_hook(lambda m, i, o: pre.append(o))
        inputs = torch.cat([torch.randn(1, 1, 16, 16), torch.ones(1, 1, 16, 16)], dim=1)
        coarse, _ = g(inputs, return_coarse=True)
        (grad,) = torch.autograd.grad(coarse.sum(), last.bias)
        (z,) = pre
        if output == "clip":
            torch.testing.assert_close(coarse, z.clamp(-1.0, 1.0))
            assert (z < -1).all()
            assert grad.item() == 0.0
        else:
            torch.testing.assert_close(coarse, torch.tanh(z))
            assert (coarse > -1).all()
            torch.testing.assert_close(grad, (1 - torch.tanh(z).square()).sum().reshape(1))
            assert grad.item() > 0.0

    def test_output_option_is_checked(self) -> None:
        """An unknown output bound is refused, naming the choices."""
        with pytest.raises(ValueError, match=r"'output' must be in \('clip', 'tanh'\)"):
            DeepFillGeneratorOptions(output="sigmoid")

    def test_ablation_without_attention(self) -> None:
        """attention = false drops the attention stream."""
        g = _generator(1, 16, attention=False)
        assert g.attention is None
        assert g(torch.zeros(1, 2, 16, 16)).shape == (1, 1, 16, 16)

    def test_size_errors(self) -> None:
        """Sizes the network cannot handle are refused with the reason."""
        with pytest.raises(ValueError, match="must be a multiple of 8"):
            _generator(1, 12, attention_rate=2)
        with pytest.raises(ValueError, match=r"dilations \[4\] need features larger than 4x4"):
            _generator(1, 16, dilations=(2, 4))
        with pytest.raises(ValueError, match="use it with task 'inpaint'"):
            build_deepfill_generator(
                DeepFillGeneratorOptions(), gancore.BuildContext(data_shape=(1, 16, 16))
            )


class TestCritic:
    @pytest.mark.parametrize("size", [8, 16, 32])
    def test_scores_one_per_image(self, size: int) -> None:
        """One score per image at any size; depth shrinks for small inputs."""
        critic = build_deepfill_critic(
            DeepFillCriticOptions(channels=4, depth=4),
            gancore.BuildContext(data_shape=(3, size, size)),
        )
        assert critic(torch.randn(5, 3, size, size)).shape == (5,)

    def test_refuses_other_shapes(self) -> None:
        """Inputs of another size are refused, naming both shapes."""
        critic = build_deepfill_critic(
            DeepFillCriticOptions(), gancore.BuildContext(data_shape=(1, 8, 8))
        )
        with pytest.raises(ValueError, match=r"expected inputs \[N, 1, 8, 8\]"):
            critic(torch.randn(2, 1, 16, 16))


def test_generator_passes_the_attention_implementation() -> None:
    """`attention_implementation` reaches the attention module, every formulation gives the same
    completion, and an unknown one is refused."""
    inputs = torch.cat([torch.randn(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)], dim=1)
    inputs[:, 1:, 4:12, 4:12] = 1.0
    outputs = []
    for name in ("auto", "matmul", "grouped", "loop"):
        torch.manual_seed(0)
        g = _generator(1, 16, attention_implementation=name).eval()
        assert g.attention is not None
        assert g.attention.implementation == name
        outputs.append(g(inputs))
    for out in outputs[1:]:
        torch.testing.assert_close(out, outputs[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="attention_implementation"):
        DeepFillGeneratorOptions(attention_implementation="fast")
