"""The adaptive controller: p follows p <- clip(p + sign(r_t - target) * images / speed, 0, p_max)."""

from __future__ import annotations

import io
import itertools
import random
import warnings

import pytest
import torch
from gan_ada.ada import AdaOptions, AdaptiveAugment

SHAPE = (3, 8, 8)
IMAGES = 64 * 4  # batch 64, interval 4: the images of one adjustment


def reference_p(
    p: float, r_t: float, images: int, target: float, speed: int, p_max: float
) -> float:
    """The paper's update (Karras et al. 2020, Sec. 3): a step of images / speed towards the
    target, clipped to [0, p_max]."""
    sign = 1.0 if r_t > target else -1.0 if r_t < target else 0.0
    return min(max(p + sign * images / speed, 0.0), p_max)


def run(augment: AdaptiveAugment, stream: list[float]) -> list[float]:
    trajectory = []
    for r_t in stream:
        augment.feedback(r_t, IMAGES)
        trajectory.append(augment.p)
    return trajectory


def expected(stream: list[float], p0: float = 0.0, **options: float) -> list[float]:
    target = options.get("target", 0.6)
    speed = int(options.get("speed_images", 500_000))
    p_max = options.get("p_max", 1.0)
    out, p = [], p0
    for r_t in stream:
        p = reference_p(p, r_t, IMAGES, target, speed, p_max)
        out.append(p)
    return out


class TestController:
    def test_always_positive_climbs_linearly_to_p_max(self) -> None:
        """r_t = 1 every time: p rises by images / speed per adjustment until it sits at p_max."""
        augment = AdaptiveAugment(AdaOptions(speed_images=10_000, p_max=0.5), SHAPE)
        stream = [1.0] * 30
        with pytest.warns(RuntimeWarning, match="p has stayed at p_max"):
            trajectory = run(augment, stream)
        assert trajectory == expected(stream, speed_images=10_000, p_max=0.5)
        step = IMAGES / 10_000
        for k, p in enumerate(trajectory[:19], start=1):
            assert p == pytest.approx(k * step, abs=1e-12)
        assert trajectory[19:] == [0.5] * 11

    def test_always_negative_falls_to_zero_and_stays(self) -> None:
        """r_t = -1 every time: p falls by images / speed per adjustment and stops at 0."""
        augment = AdaptiveAugment(AdaOptions(p=0.05, speed_images=10_000), SHAPE)
        stream = [-1.0] * 10
        trajectory = run(augment, stream)
        assert trajectory == expected(stream, p0=0.05, speed_images=10_000)
        assert trajectory[0] == pytest.approx(0.05 - IMAGES / 10_000)
        assert trajectory[-5:] == [0.0] * 5

    def test_alternating_stream_oscillates(self) -> None:
        """r_t alternating above and below the target moves p up and down by the same step."""
        augment = AdaptiveAugment(AdaOptions(p=0.3), SHAPE)
        stream = [0.9, 0.1] * 10
        trajectory = run(augment, stream)
        assert trajectory == expected(stream, p0=0.3)
        step = IMAGES / 500_000
        assert trajectory[0::2] == pytest.approx([0.3 + step] * 10, abs=1e-12)
        assert trajectory[1::2] == pytest.approx([0.3] * 10, abs=1e-12)

    def test_at_target_p_does_not_move(self) -> None:
        """sign(0) = 0: r_t exactly at the target leaves p unchanged."""
        augment = AdaptiveAugment(AdaOptions(p=0.2, target=0.5), SHAPE)
        assert run(augment, [0.5, 0.5]) == [0.2, 0.2]

    def test_never_leaves_the_bounds(self) -> None:
        """On a random sign stream with large steps, p stays within [0, p_max] and equals the
        reference update at every adjustment."""
        rng = random.Random(0)
        stream = [rng.choice([-1.0, -0.2, 0.6, 0.7, 1.0]) for _ in range(500)]
        augment = AdaptiveAugment(AdaOptions(speed_images=2_000, p_max=0.7), SHAPE)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # p does sit at p_max at times
            trajectory = run(augment, stream)
        assert trajectory == expected(stream, speed_images=2_000, p_max=0.7)
        assert all(0.0 <= p <= 0.7 for p in trajectory)
        assert min(trajectory) == 0.0
        assert max(trajectory) == 0.7

    def test_step_scales_with_the_images_reported(self) -> None:
        """The step is images / speed_images: 100k for transfer learning moves p 5x faster."""
        slow = AdaptiveAugment(AdaOptions(), SHAPE)
        fast = AdaptiveAugment(AdaOptions(speed_images=100_000), SHAPE)
        slow.feedback(1.0, 1000)
        fast.feedback(1.0, 1000)
        assert slow.p == 1000 / 500_000
        assert fast.p == 1000 / 100_000

    def test_logs_p_and_r_t(self) -> None:
        """log_values gives p, and r_t once the loop has reported one."""
        augment = AdaptiveAugment(AdaOptions(), SHAPE)
        assert augment.log_values() == {"p": 0.0}
        augment.feedback(0.75, IMAGES)
        assert augment.log_values() == {"p": IMAGES / 500_000, "r_t": 0.75}

    def test_warns_once_when_p_stays_at_p_max(self) -> None:
        """p within 0.01 of p_max for a tenth of speed_images real images gives one
        RuntimeWarning; climbing there gives none."""
        augment = AdaptiveAugment(AdaOptions(speed_images=IMAGES * 100), SHAPE)
        run(augment, [1.0] * 98)  # p climbs to 0.98: no warning (filterwarnings = error)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run(augment, [1.0] * 20)  # at 0.99 and above from the 99th adjustment on
        assert augment.p == 1.0
        assert len(caught) == 1
        assert caught[0].category is RuntimeWarning
        assert "p has stayed at p_max = 1.0 for 2560 real images" in str(caught[0].message)
        assert augment.warned


class TestFixedP:
    def test_fixed_p_asks_for_no_feedback_and_never_moves(self) -> None:
        """adaptive = false: feedback_interval is 0 and feedback only records r_t."""
        augment = AdaptiveAugment(AdaOptions(p=0.4, adaptive=False), SHAPE)
        assert augment.feedback_interval == 0
        run(augment, [1.0, -1.0, 1.0])
        assert augment.p == 0.4
        assert augment.log_values() == {"p": 0.4, "r_t": 1.0}

    def test_adaptive_asks_every_interval(self) -> None:
        """The loop is asked for r_t every `interval` critic steps (the paper's 4)."""
        assert AdaptiveAugment(AdaOptions(), SHAPE).feedback_interval == 4
        assert AdaptiveAugment(AdaOptions(interval=2), SHAPE).feedback_interval == 2


class TestState:
    def test_state_dict_round_trip_continues_p_exactly(self) -> None:
        """A state_dict saved mid-run and loaded (weights_only) into a fresh augmenter gives the
        same p trajectory afterwards as the uninterrupted augmenter."""
        stream = [1.0, 1.0, 0.2, 1.0] * 20
        options = AdaOptions(speed_images=20_000)
        straight = AdaptiveAugment(options, SHAPE)
        run(straight, stream[:37])
        buffer = io.BytesIO()
        torch.save(straight.state_dict(), buffer)
        buffer.seek(0)
        resumed = AdaptiveAugment(options, SHAPE)
        resumed.load_state_dict(torch.load(buffer, weights_only=True))
        assert resumed.p == straight.p
        assert resumed.r_t == straight.r_t
        assert resumed.adjustments == 37
        assert run(resumed, stream[37:]) == run(straight, stream[37:])

    def test_state_before_any_feedback_has_no_r_t(self) -> None:
        """A fresh augmenter's state loads back with r_t unset."""
        augment = AdaptiveAugment(AdaOptions(p=0.1), SHAPE)
        other = AdaptiveAugment(AdaOptions(), SHAPE)
        other.load_state_dict(augment.state_dict())
        assert other.p == 0.1
        assert other.r_t is None

    def test_state_survives_moving_to_a_device_dtype(self) -> None:
        """The controller state is kept in float64 whatever .to() does to the module."""
        augment = AdaptiveAugment(AdaOptions(speed_images=3), SHAPE)
        augment.feedback(1.0, 1)
        augment.to(torch.float16)
        assert augment.p == 1 / 3
        assert augment.state_dict()["_extra_state"]["p"].dtype == torch.float64


@pytest.mark.parametrize(("target", "r_t"), list(itertools.product([0.0, 0.6], [-1.0, 0.6, 1.0])))
def test_direction_follows_sign(target: float, r_t: float) -> None:
    """One adjustment moves p up when r_t > target, down when below, not at all when equal."""
    augment = AdaptiveAugment(AdaOptions(p=0.5, target=target), SHAPE)
    augment.feedback(r_t, 5000)
    assert augment.p == reference_p(0.5, r_t, 5000, target, 500_000, 1.0)
    assert (augment.p > 0.5) == (r_t > target)
    assert (augment.p < 0.5) == (r_t < target)
