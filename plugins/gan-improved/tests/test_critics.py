"""Minibatch discrimination and PacGAN critics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from einops import rearrange
from gan_improved.critics import MinibatchDiscrimination, PacCritic
from torch import nn

import gancore
import gancore.testing as gt
from gancore.builtin.regularizers import R1

MLP = {"name": "mlp", "hidden": 8, "depth": 1}


class Identity(nn.Module):
    """A feature critic whose features are its input and whose score is their sum."""

    feature_dim = 2

    def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return x

    def score(self, h: torch.Tensor) -> torch.Tensor:
        return h.sum(dim=1)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.score(x)


class TestMinibatchDiscrimination:
    def test_conforms(self) -> None:
        """It is a critic and a feature critic, on vectors (mlp inside) and images (dcgan)."""
        options = {"inner": MLP, "kernels": 3, "kernel_dim": 2}
        critic = gt.check_feature_critic("minibatch-discrimination", options, data_shape=(2,))
        assert critic.feature_dim == 8 + 3
        gt.check_feature_critic(
            "minibatch-discrimination",
            {"inner": {"name": "dcgan", "channels": 8}, "kernels": 4},
            data_shape=(1, 8, 8),
        )

    def test_closed_form_on_a_tiny_batch(self) -> None:
        """x = (0,0), (1,0), (0,2), T = identity (B = 1, C = 2): L1 distances 1, 2, 3, so
        o = 1 + e^-1 + e^-2, 1 + e^-1 + e^-3, 1 + e^-2 + e^-3 (j = i counted), and the score is
        sum(x) + w * o."""
        critic = MinibatchDiscrimination(Identity(), kernels=1, kernel_dim=2, init_std=0.05)
        with torch.no_grad():
            critic.tensor.copy_(torch.eye(2))
            critic.weight.fill_(0.5)
        x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
        e = math.exp
        o = torch.tensor(
            [1 + e(-1) + e(-2), 1 + e(-1) + e(-3), 1 + e(-2) + e(-3)], dtype=torch.float32
        )
        torch.testing.assert_close(critic.features(x), torch.cat([x, o[:, None]], dim=1))
        torch.testing.assert_close(critic(x), x.sum(1) + 0.5 * o)

    def test_kernels_are_separate(self) -> None:
        """With B = 2 and the second kernel's rows of T zero, o_2 = N for every sample."""
        critic = MinibatchDiscrimination(Identity(), kernels=2, kernel_dim=2, init_std=0.05)
        with torch.no_grad():
            critic.tensor.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]))
        x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
        o = critic.minibatch_features(x)
        assert o[:, 1].tolist() == [3.0, 3.0, 3.0]
        assert o[0, 0].item() == pytest.approx(1 + math.exp(-1) + math.exp(-2))

    def test_starts_as_its_inner_critic(self) -> None:
        """w starts at zero: the initial scores are the inner critic's."""
        critic = gt.check_critic("minibatch-discrimination", {"inner": MLP}, data_shape=(2,))
        x = torch.randn(5, 2)
        torch.testing.assert_close(critic(x), critic.inner(x))

    def test_every_parameter_gets_a_gradient(self) -> None:
        """T and w are both in the graph of the scores (data parallelism needs it)."""
        critic = gt.check_critic("minibatch-discrimination", {"inner": MLP}, data_shape=(2,))
        critic(torch.randn(4, 2)).sum().backward()
        assert all(p.grad is not None for p in critic.parameters())

    def test_refuses_an_inner_critic_without_features(self) -> None:
        """An inner critic that is not a feature critic is a one-line error naming it."""
        with pytest.raises(AssertionError, match="inner critic 'pacgan' \\(PacCritic\\) does not"):
            gt.check_critic(
                "minibatch-discrimination", {"inner": {"name": "pacgan"}}, data_shape=(2,)
            )

    def test_inner_table_is_checked(self) -> None:
        """An inner table without a name is refused, naming the key."""
        with pytest.raises(AssertionError, match="'inner' must be a critic table"):
            gt.check_critic("minibatch-discrimination", {"inner": {"hidden": 3}}, data_shape=(2,))


class TestPacGAN:
    def test_conforms(self) -> None:
        """It passes the critic check on vectors and on images (dcgan inside)."""
        critic = gt.check_critic("pacgan", {"pack": 2, "inner": MLP}, data_shape=(2,))
        assert critic.inner.data_dim == 4  # built for the packed shape
        image = gt.check_critic(
            "pacgan", {"pack": 4, "inner": {"name": "dcgan", "channels": 8}}, data_shape=(3, 8, 8)
        )
        assert image.inner.features(torch.zeros(1, 12, 8, 8)).shape[0] == 1  # 4 * 3 channels

    def test_packs_consecutive_samples(self) -> None:
        """Scores are the inner critic's on [N/m, m D] packs, each repeated m times."""
        critic = gt.check_critic("pacgan", {"pack": 3, "inner": MLP}, data_shape=(2,), batch_size=6)
        x = torch.randn(6, 2)
        packed = torch.cat([x[0:3].reshape(1, 6), x[3:6].reshape(1, 6)])
        expected = critic.inner(packed).repeat_interleave(3)
        torch.testing.assert_close(critic(x), expected)

    def test_images_pack_along_channels(self) -> None:
        """[N, C, H, W] becomes [N/m, m C, H, W], sample by sample."""
        seen = []

        class Record(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                seen.append(x)
                return x.sum(dim=(1, 2, 3))

        x = torch.randn(4, 3, 2, 2)
        PacCritic(Record(), 2)(x)
        assert seen[0].shape == (2, 6, 2, 2)
        assert torch.equal(seen[0][1, 3:], x[3])

    def test_critic_sees_m_samples(self) -> None:
        """A pack's score depends on exactly its m samples."""
        critic = gt.check_critic("pacgan", {"pack": 4, "inner": MLP}, data_shape=(2,), batch_size=8)
        x = torch.randn(8, 2, requires_grad=True)
        (grad,) = torch.autograd.grad(critic(x)[0], x)
        assert (grad[:4].abs().sum(dim=1) > 0).all()
        assert grad[4:].abs().sum() == 0

    def test_refuses_a_batch_that_does_not_pack(self) -> None:
        """A batch that is not a multiple of m is a clear error naming the setting."""
        critic = gt.check_critic("pacgan", {"pack": 4, "inner": MLP}, data_shape=(2,), batch_size=4)
        with pytest.raises(ValueError, match="batch of 6 samples does not split into packs of 4"):
            critic(torch.randn(6, 2))

    def test_r1_is_m_times_r1_of_the_packed_critic(self) -> None:
        """r1 through the wrapper is m times r1 of the inner critic on the packed inputs."""
        critic = gt.check_critic("pacgan", {"pack": 2, "inner": MLP}, data_shape=(2,))
        x = torch.randn(4, 2)
        packed = rearrange(x, "(n m) d -> n (m d)", m=2)
        wrapped = R1(gamma=1.0).penalty(critic, x, x, ())
        inner = R1(gamma=1.0).penalty(critic.inner, packed, packed, ())
        torch.testing.assert_close(wrapped, 2 * inner)

    def test_wgan_gp_if_installed(self) -> None:
        """gan-wgan's interpolation penalty runs on a packed critic (skipped without gan-wgan)."""
        gan_wgan = pytest.importorskip("gan_wgan.regularizers")
        critic = gt.check_critic("pacgan", {"pack": 2, "inner": MLP}, data_shape=(2,))
        penalty = gan_wgan.GradientPenalty().penalty(
            critic, torch.randn(4, 2), torch.randn(4, 2), ()
        )
        assert torch.isfinite(penalty)
        assert penalty.requires_grad

    def test_trains_with_r1(self, tmp_path: Path) -> None:
        """A tiny run with a packed critic and r1 trains, samples and checkpoints."""
        gt.check_training(
            gt.tiny_run(
                2,
                critic={"name": "pacgan", "pack": 4, "inner": MLP},
                regularizers=[{"name": "r1"}],
            ),
            tmp_path / "run",
        )

    def test_trains_with_wgan_gp_if_installed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With gan-wgan installed: the Wasserstein loss and wgan-gp on a packed critic."""
        pytest.importorskip("gan_wgan")
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "gan-improved,gan-wgan")
        gancore.reset_registry()
        gt.check_training(
            gt.tiny_run(
                2,
                loss={"name": "wgan"},
                critic={"name": "pacgan", "pack": 2, "inner": MLP},
                regularizers=[{"name": "wgan-gp"}],
            ),
            tmp_path / "run",
        )
