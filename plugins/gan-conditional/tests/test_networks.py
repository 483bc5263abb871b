"""The conditioning wrappers: formulas, label routing, the conformance kit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from gan_conditional.networks import (
    AuxiliaryCritic,
    ConcatGenerator,
    ConditionalBatchNormGenerator,
    ConditionalNorm,
    LabelledBuildContext,
    ProjectionCriticOptions,
    build_projection_critic,
    conditional_norm_layers,
)
from torch import nn

import gancore
import gancore.testing as gt

LABELS = torch.tensor([0, 1, 2, 1])


def build(kind: str, table: dict, shape: tuple[int, ...] = (1, 8, 8), classes: int | None = 3):
    registry = gancore.get_registry()
    context = LabelledBuildContext(data_shape=shape, registry=registry, num_classes=classes)
    return context.resolve(kind, table)


class TestProjection:
    def test_embed_std_sets_the_embedding_scale(self) -> None:
        """The class embedding starts N(0, embed_std^2): default 0.02, or the option's."""
        torch.manual_seed(0)
        inner = {"name": "dcgan", "channels": 16}
        default = build("critic", {"name": "projection", "inner": inner}, shape=(1, 16, 16))
        wide = build(
            "critic", {"name": "projection", "inner": inner, "embed_std": 0.5}, shape=(1, 16, 16)
        )
        assert default.embed.weight.std().item() == pytest.approx(0.02, rel=0.2)
        assert wide.embed.weight.std().item() == pytest.approx(0.5, rel=0.2)
        with pytest.raises(ValueError, match="embed_std"):
            build("critic", {"name": "projection", "inner": inner, "embed_std": 0.0})

    def test_score_equals_its_formula(self) -> None:
        """D(x, y) = psi(phi(x)) + embed(y) . phi(x), with phi, psi the inner critic's."""
        torch.manual_seed(0)
        critic = build("critic", {"name": "projection", "inner": {"name": "dcgan", "channels": 4}})
        critic.eval()
        x = torch.rand(4, 1, 8, 8) * 2 - 1
        phi = critic.inner.features(x)
        expected = critic.inner.score(phi) + (critic.embed.weight[LABELS] * phi).sum(1)
        torch.testing.assert_close(critic(x, LABELS), expected)
        # and by hand for the label term: changing y changes only <embed(y), phi(x)>
        other = torch.tensor([2, 2, 2, 2])
        delta = ((critic.embed.weight[other] - critic.embed.weight[LABELS]) * phi).sum(1)
        torch.testing.assert_close(critic(x, other) - critic(x, LABELS), delta)

    def test_conformance(self) -> None:
        """The conformance kit passes with labels as the extra input, on dcgan and mlp."""
        gt.check_critic(
            "projection", {"inner": {"name": "dcgan", "channels": 4}, "classes": 3}, extra=[LABELS]
        )
        gt.check_critic(
            "projection",
            {"inner": {"name": "mlp", "hidden": 8, "depth": 1}, "classes": 3},
            data_shape=(2,),
            extra=[LABELS],
        )

    def test_refuses_a_critic_without_features(self) -> None:
        """An inner critic that is not a FeatureCritic is a one-line error naming it."""

        class Context:
            num_classes = 3

            def resolve(self, kind: str, table: dict, *, key: str | None = None) -> nn.Module:
                return _Plain()

        options = ProjectionCriticOptions(inner={"name": "plain"})
        with pytest.raises(ValueError, match="inner critic 'plain' does not expose its features"):
            build_projection_critic(options, Context())

    def test_needs_a_class_count(self) -> None:
        """Outside a conditional task without 'classes' it says where the count comes from."""
        with pytest.raises(ValueError, match="the number of classes is unknown"):
            build("critic", {"name": "projection", "inner": {"name": "dcgan"}}, classes=None)

    def test_classes_must_agree_with_the_data(self) -> None:
        with pytest.raises(ValueError, match="classes = 4 but the dataset has 3 classes"):
            build("critic", {"name": "projection", "classes": 4, "inner": {"name": "dcgan"}})


class _Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


class TestConcatCritic:
    def test_label_maps_are_concatenated(self) -> None:
        """The inner critic sees [x, one-hot maps]: K more channels, constant per image."""
        critic = build("critic", {"name": "concat", "inner": {"name": "dcgan", "channels": 4}})
        x = torch.rand(4, 1, 8, 8)
        joined = critic._joined(x, (LABELS,))
        assert joined.shape == (4, 4, 8, 8)
        assert torch.equal(joined[:, :1], x)
        assert torch.equal(joined[:, 1:].amax(dim=(2, 3)), F.one_hot(LABELS, 3).float())
        torch.testing.assert_close(critic(x, LABELS), critic.inner(joined))

    def test_conformance(self) -> None:
        """Critic and feature-critic contracts, images and vectors."""
        table = {"inner": {"name": "dcgan", "channels": 4}, "classes": 3}
        gt.check_feature_critic("concat", table, extra=[LABELS])
        table = {"inner": {"name": "mlp", "hidden": 8, "depth": 1}, "classes": 3}
        gt.check_feature_critic("concat", table, data_shape=(2,), extra=[LABELS])


class TestConcatGenerator:
    def test_label_code_is_concatenated(self) -> None:
        """The inner generator gets [z, one-hot(y)]: latent_dim + K inputs."""
        gen = build(
            "generator",
            {"name": "concat", "latent_dim": 5, "inner": {"name": "dcgan", "channels": 4}},
        )
        assert isinstance(gen, ConcatGenerator)
        assert gen.latent_dim == 5
        assert gen.inner.latent_dim == 8
        z = torch.randn(4, 5)
        joined = torch.cat([z, F.one_hot(LABELS, 3).float()], dim=1)
        gen.eval()
        torch.testing.assert_close(gen(z, LABELS), gen.inner(joined))

    def test_embedding(self) -> None:
        """With embed_dim the code is a learned embedding of that size."""
        gen = build(
            "generator",
            {
                "name": "concat",
                "latent_dim": 5,
                "embed_dim": 2,
                "inner": {"name": "mlp", "hidden": 8},
            },
            shape=(2,),
        )
        assert gen.inner.latent_dim == 7
        assert torch.equal(gen.code(LABELS), gen.embed.weight[LABELS])

    def test_inner_latent_dim_is_refused(self) -> None:
        with pytest.raises(ValueError, match="set latent_dim on the wrapper"):
            build("generator", {"name": "concat", "inner": {"name": "dcgan", "latent_dim": 3}})

    def test_conformance(self) -> None:
        """check_generator with labels, images and vectors."""
        gt.check_generator(
            "concat", {"inner": {"name": "dcgan", "channels": 4}, "classes": 3}, extra=[LABELS]
        )
        gt.check_generator(
            "concat",
            {"inner": {"name": "mlp", "hidden": 8}, "classes": 3},
            data_shape=(2,),
            extra=[LABELS],
        )


class TestConditionalBatchNorm:
    def test_every_batchnorm_is_replaced(self) -> None:
        """dcgan's BatchNorm layers become ConditionalNorms without their own affine."""
        gen = build(
            "generator",
            {
                "name": "conditional-batchnorm",
                "inner": {"name": "dcgan", "latent_dim": 4, "channels": 4},
            },
        )
        assert isinstance(gen, ConditionalBatchNormGenerator)
        norms = gen.norms()
        assert len(norms) == 1  # 8x8 dcgan: one hidden BatchNorm (4x4)
        assert all(n.norm.weight is None and n.norm.bias is None for n in norms)
        assert not conditional_norm_layers(gen.inner) or all(
            isinstance(gen.inner.get_submodule(n), nn.BatchNorm2d)
            for n in conditional_norm_layers(gen.inner)
        )

    def test_picks_each_class_parameters(self) -> None:
        """Output = gain[y] * BN(h) + bias[y] per sample, with class y's own parameters."""
        norm = ConditionalNorm(nn.BatchNorm2d(2), num_classes=3)
        with torch.no_grad():
            norm.gain.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
            norm.bias.copy_(torch.tensor([[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]]))
        h = torch.randn(4, 2, 3, 3)
        normalized = F.batch_norm(h, None, None, training=True)
        norm.labels = LABELS
        out = norm(h)
        for i, y in enumerate(LABELS.tolist()):
            expected = normalized[i] * norm.gain[y].view(2, 1, 1) + norm.bias[y].view(2, 1, 1)
            torch.testing.assert_close(out[i], expected)

    def test_starts_as_the_inner_network(self) -> None:
        """Every class starts with the layer's own gain and bias."""
        bn = nn.BatchNorm2d(3)
        with torch.no_grad():
            bn.weight.copy_(torch.tensor([1.1, 0.9, 1.0]))
        norm = ConditionalNorm(bn, num_classes=4)
        assert torch.equal(norm.gain, torch.tensor([1.1, 0.9, 1.0]).repeat(4, 1))
        assert torch.equal(norm.bias, torch.zeros(4, 3))

    def test_label_routing(self) -> None:
        """Sample i depends on its own label only (eval mode: no batch statistics)."""
        torch.manual_seed(0)
        gen = build(
            "generator",
            {
                "name": "conditional-batchnorm",
                "inner": {"name": "dcgan", "latent_dim": 4, "channels": 4},
            },
        )
        with torch.no_grad():
            for n in gen.norms():
                n.gain.normal_()
        gen.eval()
        z = torch.randn(4, 4)
        out = gen(z, LABELS)
        assert out.shape == (4, 1, 8, 8)
        one = gen(z[1:2], LABELS[1:2])
        torch.testing.assert_close(out[1:2], one)
        assert not torch.allclose(gen(z[1:2], torch.tensor([0])), one)
        assert all(n.labels is None for n in gen.norms())

    def test_the_hook_names_the_layers(self) -> None:
        """A generator's conditional_norm_layers() picks which layers are conditioned."""

        class Mine(nn.Module):
            latent_dim = 2

            def __init__(self) -> None:
                super().__init__()
                self.a, self.b = nn.BatchNorm1d(2), nn.BatchNorm1d(2)

            def conditional_norm_layers(self) -> list[str]:
                return ["b"]

            def forward(self, z: torch.Tensor) -> torch.Tensor:
                return self.b(self.a(z))

        gen = ConditionalBatchNormGenerator(Mine(), 3, conditional_norm_layers(Mine()))
        assert isinstance(gen.inner.b, ConditionalNorm)
        assert isinstance(gen.inner.a, nn.BatchNorm1d)

    def test_mlp_has_no_norm_layers(self) -> None:
        with pytest.raises(ValueError, match="has no normalization layers to condition"):
            build(
                "generator", {"name": "conditional-batchnorm", "inner": {"name": "mlp"}}, shape=(2,)
            )

    def test_conformance(self) -> None:
        gt.check_generator(
            "conditional-batchnorm",
            {"inner": {"name": "dcgan", "latent_dim": 4, "channels": 4}, "classes": 3},
            extra=[LABELS],
        )


class TestAuxiliaryCritic:
    def test_records_the_head_while_asked(self) -> None:
        """critic(x) is the body's score; with recorded = [] each call also appends head(phi)."""
        body = build("critic", {"name": "dcgan", "channels": 4})
        critic = AuxiliaryCritic(body, nn.Linear(body.feature_dim, 3))
        x = torch.rand(4, 1, 8, 8)
        torch.testing.assert_close(critic(x), body(x))
        assert critic.recorded is None
        critic.recorded = []
        critic(x)
        (logits,) = critic.recorded
        torch.testing.assert_close(logits, critic.head(body.features(x)))
        critic.recorded = None
        with critic.heads() as heads:  # the same, undone on leaving (even on an error)
            critic(x)
            critic(2 * x)
        assert critic.recorded is None
        assert len(heads) == 2
        torch.testing.assert_close(heads[1], critic.head(body.features(2 * x)))
        with pytest.raises(RuntimeError), critic.heads():
            raise RuntimeError
        assert critic.recorded is None
        gt.check_feature_critic(critic)
