"""Feature matching (a generator loss term) and historical averaging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from gan_improved.regularizers import (
    FeatureMatching,
    HistoricalAveraging,
    HistoricalAveragingOptions,
)
from torch import nn

import gancore
import gancore.testing as gt
from gancore._phases import loss_terms, split_regularizers


class LinearFeatureCritic(nn.Module):
    """f(x) = W x, score(h) = sum(h): a feature critic with a linear feature map."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.feature_dim = weight.shape[0]

    def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T

    def score(self, h: torch.Tensor) -> torch.Tensor:
        return h.sum(dim=1)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x))


class Shift:
    """A deterministic 'augmenter': adds 1 to every input."""

    feedback_interval = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1.0

    def feedback(self, real_sign_mean: float, images: int) -> None:
        pass


class Mean:
    """A loss whose generator loss is -mean(scores)."""

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


def step_context(critic: nn.Module, terms: Any, augmenter: Any = None) -> gancore.StepContext:
    return gancore.StepContext(
        players={"generator": {}, "critic": {"critic": critic}},
        modules={"critic": critic},
        loss=Mean(),
        augmenter=augmenter if augmenter is not None else Shift(),
        feedback=None,
        device=torch.device("cpu"),
        seed=0,
        rank=0,
        world_size=1,
        loss_terms=terms,
    )


class TestFeatureMatching:
    def test_conforms(self) -> None:
        """It passes the regularizer conformance check as a generator loss term."""
        reg = gt.check_regularizer("feature-matching")
        assert (reg.player, reg.interval, reg.replaces_loss) == ("generator", 1, True)
        assert gt.check_regularizer("feature-matching", {"mode": "add"}).replaces_loss is False

    def test_value_and_gradient_for_a_linear_feature_map(self) -> None:
        """For f(x) = W x: value w ||W (mean real - mean fake)||^2, gradient at fake_i
        -2 w / N W^T W (mean real - mean fake)."""
        torch.manual_seed(0)
        w_matrix = torch.randn(3, 2)
        critic = LinearFeatureCritic(w_matrix)
        real, fake = torch.randn(4, 2), torch.randn(4, 2, requires_grad=True)
        value = FeatureMatching(weight=0.5).loss_term(critic, real, fake, ())
        diff = real.mean(0) - fake.detach().mean(0)
        assert value.item() == pytest.approx(0.5 * (w_matrix @ diff).square().sum().item())
        (grad,) = torch.autograd.grad(value, fake)
        expected = (-2 * 0.5 / 4 * (w_matrix.T @ w_matrix @ diff)).expand(4, 2)
        torch.testing.assert_close(grad, expected)

    def test_real_features_are_a_constant(self) -> None:
        """No gradient flows into the real side (nor into the critic through it)."""
        critic = LinearFeatureCritic(torch.ones(2, 2))
        real = torch.randn(4, 2, requires_grad=True)
        value = FeatureMatching().loss_term(critic, real, torch.randn(4, 2), ())
        assert not value.requires_grad or torch.autograd.grad(value, real, allow_unused=True) == (
            None,
        )

    def test_replaces_the_adversarial_loss_on_augmented_inputs(self) -> None:
        """In generator_loss, 'replace' returns the term alone, computed on augmented inputs."""
        critic = LinearFeatureCritic(torch.eye(2))
        step = step_context(critic, [("feature-matching", FeatureMatching())])
        real, fake = torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [3.0, 2.0]])
        got = step.generator_loss("critic", fake, real=real)
        # the shift moves real and fake alike: ||(0,0) - (2,1)||^2 = 5
        assert got.item() == pytest.approx(5.0)
        assert set(step.logs) == {"reg/feature-matching"}

    def test_augmenter_is_applied(self) -> None:
        """Each side goes through the augmenter (an augmenter that scales real only shows it)."""
        critic = LinearFeatureCritic(torch.eye(2))

        class Double(Shift):
            def __call__(self, x: torch.Tensor) -> torch.Tensor:
                return 2 * x

        step = step_context(critic, [("feature-matching", FeatureMatching())], Double())
        got = step.generator_loss("critic", torch.ones(2, 2), real=torch.zeros(2, 2))
        assert got.item() == pytest.approx(8.0)  # ||0 - (2, 2)||^2

    def test_adds_to_the_adversarial_loss(self) -> None:
        """'add' returns the adversarial loss plus the term, each logged."""
        critic = LinearFeatureCritic(torch.eye(2))
        step = step_context(critic, [("fm", FeatureMatching(mode="add", weight=2.0))])
        real, fake = torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [3.0, 2.0]])
        got = step.generator_loss("critic", fake, real=real)
        adversarial = -(fake + 1).sum(dim=1).mean()  # -mean(score), score = sum of features
        assert got.item() == pytest.approx(adversarial.item() + 2.0 * 5.0)
        assert set(step.logs) == {"loss/generator", "reg/fm"}

    def test_needs_the_real_batch(self) -> None:
        """A task that does not pass real= gets a one-line error naming the term."""
        step = step_context(
            LinearFeatureCritic(torch.eye(2)), [("feature-matching", FeatureMatching())]
        )
        with pytest.raises(ValueError, match="'feature-matching' need the real batch"):
            step.generator_loss("critic", torch.ones(2, 2))

    def test_refuses_a_critic_without_features(self) -> None:
        """check() refuses a critic that is not a feature critic, naming it."""

        class Plain(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x.sum(1)

        with pytest.raises(ValueError, match="critic 'critic' \\(Plain\\) does not expose"):
            FeatureMatching().check({"critic": {"critic": Plain()}})

    def test_is_planned_as_a_loss_term(self) -> None:
        """The loop runs it in generator_loss, not as an every-step penalty."""
        regs = [("feature-matching", FeatureMatching())]
        assert loss_terms(regs) == tuple(regs)
        assert split_regularizers(regs, "generator") == ((), ())

    def test_a_lazy_loss_term_is_refused(self) -> None:
        """A loss term with interval > 1 is an error naming it."""

        class Lazy:
            player, interval, replaces_loss = "generator", 4, False

            def loss_term(self, *args: Any) -> torch.Tensor:
                return torch.zeros(())

        with pytest.raises(ValueError, match=r"'lazy'.*interval must be 1 \(got 4\)"):
            loss_terms([("lazy", Lazy())])

    def test_trains(self, tmp_path: Path) -> None:
        """A tiny run with feature matching logs the term and no adversarial generator loss."""
        result = gt.check_training(
            gt.tiny_run(2, regularizers=[{"name": "feature-matching"}]), tmp_path / "run"
        )
        text = (tmp_path / "run" / "metrics.jsonl").read_text()
        assert "reg/feature-matching" in text
        assert "loss/generator" not in text
        assert result.step == 2


class TestHistoricalAveraging:
    def build(self, player: str = "critic", weight: float = 1.0) -> HistoricalAveraging:
        return HistoricalAveraging(HistoricalAveragingOptions(player=player, weight=weight))

    def test_conforms(self) -> None:
        """It passes the regularizer conformance check for either player."""
        gt.check_regularizer("historical-averaging")
        gt.check_regularizer("historical-averaging", {"player": "generator"})

    def test_running_mean_and_penalty(self) -> None:
        """After updates theta = 1, 3, 8 the mean is 4 and the penalty weight * (8 - 4)^2 per
        element; the current value is part of the mean."""
        net = nn.Linear(1, 1, bias=False)
        reg = self.build(weight=0.5)
        reg.check({"critic": {"critic": net}})
        with torch.no_grad():
            net.weight.fill_(1.0)
        assert reg.penalty(None, None, None, ()).item() == 0.0  # starts from the first weights
        for value in (3.0, 8.0):
            with torch.no_grad():
                net.weight.fill_(value)
            reg.after_step(net)
        assert reg.state_dict()["mean:weight"].item() == pytest.approx(4.0)
        assert int(reg.state_dict()["count"]) == 3
        penalty = reg.penalty(None, None, None, ())
        assert penalty.item() == pytest.approx(0.5 * 16.0)
        (grad,) = torch.autograd.grad(penalty, net.weight)
        assert grad.item() == pytest.approx(0.5 * 2 * 4.0)  # the mean is a constant

    def test_buffers_name_every_parameter(self) -> None:
        """One mean buffer per trainable parameter, plus the count."""
        net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
        reg = self.build("generator")
        reg.check({"generator": {"generator": net}})
        assert sorted(reg.state_dict()) == [
            "count",
            "mean:0:bias",
            "mean:0:weight",
            "mean:1:bias",
            "mean:1:weight",
        ]

    def test_refuses_several_networks(self) -> None:
        """A player with two networks is refused, naming them."""
        with pytest.raises(ValueError, match="exactly one network"):
            self.build().check({"critic": {"a": nn.Linear(1, 1), "b": nn.Linear(1, 1)}})

    def test_running_mean_across_resume(self, tmp_path: Path) -> None:
        """4 steps straight equal 2 steps, stop, resume, 2 more: weights and running means."""
        document = gt.tiny_run(
            4,
            regularizers=[
                {"name": "historical-averaging"},
                {"name": "historical-averaging", "player": "generator"},
            ],
            training={"batch_size": 8, "log_every": 1, "sample_every": 0, "checkpoint_every": 0},
        )
        config = gancore.parse_config(document, gancore.get_registry())
        straight = gancore.train(config, tmp_path / "straight", progress=False)
        first = gt.train_interrupted(config, tmp_path / "resumed", after=2)
        assert first.interrupted
        assert first.step == 2
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        for (_, a), (_, b) in zip(straight.regularizers, resumed.regularizers, strict=True):
            state_a, state_b = a.state_dict(), b.state_dict()
            assert int(state_a["count"]) == 5  # the first weights and 4 updates
            for key in state_a:
                assert torch.equal(state_a[key], state_b[key]), key
        for key, value in straight.critics["critic"].state_dict().items():
            assert torch.equal(value, resumed.critics["critic"].state_dict()[key]), key
