"""The sagan and biggan networks: the conformance kit, the hierarchical latent, composition with
gan-conditional's wrappers, presets and errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from gan_biggan.layers import HierarchicalBatchNorm, SelfAttention
from gan_biggan.networks import BigGANGenerator, ResNetCritic, SAGANGenerator, critic_plan
from gan_conditional.networks import (
    ConditionalBatchNormGenerator,
    ConditionalNorm,
    LabelledBuildContext,
)

import gancore
import gancore.testing as gt

LABELS = torch.tensor([0, 1, 2, 1])
SHAPE = (1, 16, 16)
SMALL_G: dict[str, Any] = {"channels": 2, "attention_resolution": 16}
SMALL_D: dict[str, Any] = {"channels": 2, "attention_resolution": 8}


def build(kind: str, table: dict, shape: tuple[int, ...] = SHAPE, classes: int | None = 3) -> Any:
    registry = gancore.get_registry()
    context = LabelledBuildContext(data_shape=shape, registry=registry, num_classes=classes)
    return context.resolve(kind, table)


class TestConformance:
    def test_sagan_generator(self) -> None:
        """sagan, unconditional, for 1 and 3 channels."""
        gt.check_generator("sagan", SMALL_G | {"latent_dim": 8}, data_shape=SHAPE)
        gt.check_generator("sagan", SMALL_G | {"latent_dim": 8}, data_shape=(3, 16, 16))

    def test_sagan_generator_with_conditional_batchnorm(self) -> None:
        """sagan inside gan-conditional's conditional-batchnorm, labels as the extra input."""
        inner = {"name": "sagan", "latent_dim": 8} | SMALL_G
        generator = gt.check_generator(
            "conditional-batchnorm",
            {"inner": inner, "classes": 3},
            data_shape=SHAPE,
            extra=[LABELS],
        )
        assert isinstance(generator, ConditionalBatchNormGenerator)
        norms = [n for n, m in generator.named_modules() if isinstance(m, ConditionalNorm)]
        assert len(norms) == 4  # two blocks, two norms each; the output norm stays plain
        assert isinstance(generator.inner.out_norm, torch.nn.BatchNorm2d)

    def test_biggan_generator(self) -> None:
        """biggan with classes (labels as the extra input) and without."""
        options = SMALL_G | {"latent_dim": 9, "embed_dim": 4}
        gt.check_generator("biggan", options | {"classes": 3}, data_shape=SHAPE, extra=[LABELS])
        gt.check_generator("biggan", options, data_shape=SHAPE)

    @pytest.mark.parametrize("name", ["sagan", "biggan"])
    def test_critic(self, name: str) -> None:
        """The critics are feature critics; inside gan-conditional's projection too."""
        gt.check_feature_critic(name, SMALL_D, data_shape=SHAPE)
        gt.check_critic(
            "projection",
            {"inner": {"name": name} | SMALL_D, "classes": 3},
            data_shape=SHAPE,
            extra=[LABELS],
        )

    def test_orthogonal(self) -> None:
        """The regularizer on the default tiny generator and on biggan."""
        gt.check_regularizer("orthogonal")
        generator = build("generator", {"name": "biggan", "latent_dim": 9} | SMALL_G, classes=None)
        gt.check_regularizer("orthogonal", generator=generator)


class TestBigGANGenerator:
    def _generator(self) -> BigGANGenerator:
        torch.manual_seed(0)
        table = {"name": "biggan", "latent_dim": 9, "embed_dim": 4} | SMALL_G
        generator = build("generator", table)
        assert isinstance(generator, BigGANGenerator)
        return generator

    def test_hierarchical_latent_routes_each_chunk_to_its_block(self) -> None:
        """z = [z0, z1, z2]: z0 enters the first layer, block k's two norms get [z_{k+1}, e(y)]
        with one shared embedding e."""
        generator = self._generator()
        z = torch.randn(4, 9)
        seen: dict[str, torch.Tensor] = {}
        hooks = [
            module.register_forward_pre_hook(
                lambda m, args, name=name: seen.__setitem__(name, args[1].detach())
            )
            for name, module in generator.named_modules()
            if isinstance(module, HierarchicalBatchNorm)
        ]
        first: list[torch.Tensor] = []
        hooks.append(generator.linear.register_forward_pre_hook(lambda m, a: first.append(a[0])))
        generator(z, LABELS)
        for hook in hooks:
            hook.remove()
        embedding = generator.shared.weight[LABELS].detach()
        torch.testing.assert_close(first[0], z[:, 0:3])
        for block in range(2):
            expected = torch.cat([z[:, 3 * (block + 1) : 3 * (block + 2)], embedding], dim=1)
            for norm in ("norm1", "norm2"):
                torch.testing.assert_close(seen[f"blocks.{block}.{norm}"], expected)
        assert len(seen) == 4

    def test_a_chunk_changes_only_its_block(self) -> None:
        """Changing chunk 2 leaves the output of block 0 unchanged and changes block 1's."""
        generator = self._generator().eval()
        z = torch.randn(4, 9)
        other = z.clone()
        other[:, 6:] += 1.0
        outputs: list[torch.Tensor] = []
        hooks = [
            b.register_forward_hook(lambda m, a, o: outputs.append(o)) for b in generator.blocks
        ]
        with torch.no_grad():
            generator(z, LABELS), generator(other, LABELS)
        for hook in hooks:
            hook.remove()
        torch.testing.assert_close(outputs[0], outputs[2])
        assert not torch.allclose(outputs[1], outputs[3])

    def test_embedding_is_shared(self) -> None:
        """One embedding table for every block."""
        generator = self._generator()
        tables = [m for m in generator.modules() if isinstance(m, torch.nn.Embedding)]
        assert tables == [generator.shared]

    def test_latent_dim_must_split(self) -> None:
        """A latent size that does not split into equal chunks is a one-line error."""
        with pytest.raises(ValueError, match="latent_dim = 10 does not split into 3 equal"):
            build("generator", {"name": "biggan", "latent_dim": 10} | SMALL_G)

    def test_labels_are_checked(self) -> None:
        """Missing labels name what was expected."""
        with pytest.raises(ValueError, match=r"expected int64 labels \[4\] \(got none\)"):
            self._generator()(torch.randn(4, 9))

    def test_classes_come_from_the_task(self) -> None:
        """Inside a conditional task the class count is the dataset's."""
        generator = build("generator", {"name": "biggan", "latent_dim": 9} | SMALL_G, classes=7)
        assert generator.num_classes == 7
        assert generator.shared.num_embeddings == 7


class TestLayout:
    @pytest.mark.parametrize(
        ("resolution", "blocks", "widths"),
        [(32, 3, [4, 4, 4, 4]), (64, 4, [16, 16, 8, 4, 2]), (128, 5, [16, 16, 8, 4, 2, 1])],
    )
    def test_generator_presets(self, resolution: int, blocks: int, widths: list[int]) -> None:
        """BigGAN's width multipliers at 32, 64 and 128 px."""
        generator = build(
            "generator",
            {"name": "sagan", "channels": 1, "attention_resolution": 0},
            shape=(3, resolution, resolution),
        )
        assert isinstance(generator, SAGANGenerator)
        assert len(generator.blocks) == blocks
        assert generator.widths == widths

    def test_critic_presets(self) -> None:
        """The critic halves down to 8x8 at 32 px, to 4x4 from 64 px on."""
        assert critic_plan("c", 32, None) == ((4, 4, 4, 4), (True, True, False, False))
        assert critic_plan("c", 64, None)[1] == (True, True, True, True, False)
        assert critic_plan("c", 128, None) == ((1, 2, 4, 8, 16, 16), (True,) * 5 + (False,))

    def test_attention_sits_at_its_resolution(self) -> None:
        """The self-attention block sees feature maps of attention_resolution."""
        generator = build("generator", {"name": "sagan", "latent_dim": 8} | SMALL_G)
        critic = build("critic", {"name": "sagan"} | SMALL_D)
        assert isinstance(critic, ResNetCritic)
        sizes: list[int] = []
        for network in (generator, critic):
            for module in network.modules():
                if isinstance(module, SelfAttention):
                    module.register_forward_pre_hook(lambda m, a: sizes.append(a[0].shape[-1]))
        generator(torch.randn(2, 8))
        critic(torch.rand(2, *SHAPE))
        assert sizes == [16, 8]

    def test_unknown_attention_resolution_is_one_line(self) -> None:
        """An attention resolution the network does not have lists those it has."""
        with pytest.raises(ValueError, match=r"attention_resolution = 64 .* \(8, 16\)"):
            build("generator", {"name": "sagan", "channels": 2, "attention_resolution": 64})

    def test_non_square_data_is_one_line(self) -> None:
        """Data that is not a square power of two names the shape."""
        with pytest.raises(ValueError, match=r"critic 'biggan': expected square images"):
            build("critic", {"name": "biggan"} | SMALL_D, shape=(1, 12, 12))

    def test_no_spectral_norm(self) -> None:
        """spectral_norm = false builds plain layers."""
        generator = build(
            "generator", {"name": "sagan", "latent_dim": 8, "spectral_norm": False} | SMALL_G
        )
        assert not any(hasattr(m, "parametrizations") for m in generator.modules())


DEEP: dict[str, Any] = {"latent_dim": 6, "channels": 2, "embed_dim": 4, "attention_resolution": 8}


class TestBigGANDeep:
    @pytest.mark.slow  # about 12 s on the shared 2-core machine
    def test_conformance(self) -> None:
        """Generator with and without classes; the critic, alone and inside projection (8x8)."""
        tiny = (1, 8, 8)
        gt.check_generator("biggan-deep", DEEP | {"classes": 3}, data_shape=tiny, extra=[LABELS])
        gt.check_generator("biggan-deep", DEEP, data_shape=tiny)
        critic = {"channels": 2, "attention_resolution": 4}
        gt.check_feature_critic("biggan-deep", critic, data_shape=tiny)
        gt.check_critic(
            "projection",
            {"inner": {"name": "biggan-deep"} | critic, "classes": 3},
            data_shape=tiny,
            extra=[LABELS],
        )

    def test_every_block_gets_all_of_z_and_the_embedding(self) -> None:
        """Two blocks per resolution, each conditioned on [z, e(y)]; the first layer too."""
        torch.manual_seed(0)
        generator = build("generator", {"name": "biggan-deep"} | DEEP)
        z = torch.randn(4, 6)
        seen: list[torch.Tensor] = []
        for block in generator.blocks:
            block.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
        first: list[torch.Tensor] = []
        generator.linear.register_forward_pre_hook(lambda m, a: first.append(a[0]))
        generator(z, LABELS)
        expected = torch.cat([z, generator.shared.weight[LABELS].detach()], dim=1)
        assert len(seen) == 4  # 4 -> 8 -> 16: two resolutions, two blocks each
        for condition in [*seen, first[0]]:
            torch.testing.assert_close(condition.detach(), expected)

    def test_generator_skip_keeps_the_first_channels(self) -> None:
        """With its last convolution zeroed, a block returns the first channels of its input,
        up-sampled."""
        from gan_biggan.layers import DeepGeneratorBlock

        block = DeepGeneratorBlock(8, 4, 3, upsample=True, sn=False)
        with torch.no_grad():
            block.conv4.weight.zero_()
            block.conv4.bias.zero_()
        x = torch.randn(2, 8, 3, 3)
        expected = torch.nn.functional.interpolate(x[:, :4], scale_factor=2, mode="nearest")
        torch.testing.assert_close(block(x, torch.randn(2, 3)), expected)

    def test_critic_skip_passes_the_input_through(self) -> None:
        """The critic block's skip is the input (pooled) with extra channels concatenated."""
        from gan_biggan.layers import DeepCriticBlock

        block = DeepCriticBlock(4, 8, downsample=True, sn=False)
        with torch.no_grad():
            block.conv4.weight.zero_()
            block.conv4.bias.zero_()
        x = torch.randn(2, 4, 4, 4)
        out = block(x)
        torch.testing.assert_close(out[:, :4], torch.nn.functional.avg_pool2d(x, 2))
        assert out.shape == (2, 8, 2, 2)
