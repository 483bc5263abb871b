"""The tasks: ACGAN's and InfoGAN's losses against their formulas, label routing, short runs,
exact resume and two processes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
import torch.nn.functional as F
from gan_conditional.networks import ConcatGenerator
from gan_conditional.tasks import (
    Conditional,
    InfoGAN,
    acgan_losses,
    code_consistency,
    info_loss,
    real_code_terms,
    translate,
    uniform_from_normal,
)
from torch import nn

import gancore
import gancore.testing as gt
from gancore.builtin.losses import NonSaturating

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def tiny(task: dict[str, Any], steps: int = 2, **sections: Any) -> dict[str, Any]:
    """A digits 8x8 run with tiny DCGANs, conditioned as ``sections`` say."""
    document = gt.tiny_run(
        steps,
        task=task,
        data={"name": "digits", "resolution": 8},
        generator={
            "name": "conditional-batchnorm",
            "inner": {"name": "dcgan", "latent_dim": 4, "channels": 4},
        },
        critic={"name": "projection", "inner": {"name": "dcgan", "channels": 4, "norm": "none"}},
    )
    document.update(sections)
    return document


def assert_exact_resume(document: dict[str, Any], tmp_path: Path) -> None:
    """``document`` (6 steps) run straight, and stopped after 3 then resumed: the same weights."""
    document["training"].update(checkpoint_every=3, sample_every=0)
    registry = gancore.get_registry()
    gancore.train(gancore.parse_config(document, registry), tmp_path / "straight", progress=False)
    config = gancore.parse_config(document, registry)
    gt.train_interrupted(config, tmp_path / "resumed", after=3)
    gt.train_interrupted(config, tmp_path / "resumed", after=100, resume=True)
    straight, _ = gancore.load_checkpoint(
        gancore.find_checkpoint(tmp_path / "straight" / "checkpoints")
    )
    resumed, _ = gancore.load_checkpoint(
        gancore.find_checkpoint(tmp_path / "resumed" / "checkpoints")
    )
    for group in ("generators", "critics"):
        for key, value in straight[group].items():
            assert torch.equal(value, resumed[group][key]), (group, key)


class TestFormulas:
    def test_acgan_losses(self) -> None:
        """D minimises -(L_S + w L_C), G minimises -(w L_C_fake) + its adversarial term, with
        L_S = E log sigmoid(D(real)) + E log(1 - sigmoid(D(fake))) for the logistic loss."""
        real_s, fake_s = torch.tensor([0.5, -1.0]), torch.tensor([-0.3, 2.0])
        real_l = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        fake_l = torch.tensor([[0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
        y, y_fake = torch.tensor([0, 1]), torch.tensor([2, 0])
        critic, generator = acgan_losses(
            NonSaturating(), real_s, fake_s, real_l, fake_l, y, y_fake, 0.5
        )
        log_p = lambda logits, labels: logits.log_softmax(1)[torch.arange(2), labels].mean()  # noqa: E731
        l_s = F.logsigmoid(real_s).mean() + torch.log1p(-torch.sigmoid(fake_s)).mean()
        l_c = log_p(real_l, y) + log_p(fake_l, y_fake)
        torch.testing.assert_close(critic, -(l_s + 0.5 * l_c))
        torch.testing.assert_close(
            generator, -F.logsigmoid(fake_s).mean() - 0.5 * log_p(fake_l, y_fake)
        )

    def test_info_loss_closed_form(self) -> None:
        """For a known Q output, L_I and the loss equal the log-likelihoods by hand."""
        # Two samples, one Cat(2) code, one continuous code; Q: logits and a mean.
        q = torch.tensor([[math.log(3.0), 0.0, 0.5], [0.0, 0.0, -0.5]])
        cat, cont = torch.tensor([[0], [1]]), torch.tensor([[0.5], [0.0]])
        loss, bound_cat, bound_cont = info_loss(q, cat, cont, (2,), 2.0, 1.0, 0.1)
        log_q_cat = (math.log(3 / 4) + math.log(1 / 2)) / 2  # p(c=0) = 3/4, p(c=1) = 1/2
        gauss = lambda c, m: -math.log(2.0) - 0.5 * math.log(2 * math.pi) - (c - m) ** 2 / 8  # noqa: E731
        log_q_cont = (gauss(0.5, 0.5) + gauss(0.0, -0.5)) / 2
        assert bound_cat.item() == pytest.approx(log_q_cat + math.log(2))
        assert bound_cont.item() == pytest.approx(log_q_cont + math.log(2))
        assert loss.item() == pytest.approx(-(log_q_cat + 0.1 * log_q_cont))

    def test_info_loss_learned_std(self) -> None:
        """With a learned std Q also gives log sigma: log N(c; mu, e^s)."""
        q = torch.tensor([[0.25, math.log(0.5)]])
        _, _, bound = info_loss(
            q, torch.zeros(1, 0, dtype=torch.long), torch.tensor([[0.75]]), (), None, 1.0, 1.0
        )
        expected = -math.log(0.5) - 0.5 * math.log(2 * math.pi) - 0.25 / (2 * 0.25) + math.log(2)
        assert bound.item() == pytest.approx(expected)

    def test_real_code_terms_closed_form(self) -> None:
        """The marginal KL from uniform and the mean entropy of Q(c|x) by hand: two images, one
        Cat(2) code with p = (3/4, 1/4) and (1/2, 1/2), one Cat(3) code certain of value 0 on
        both (a uniform batch would give KL 0; certain images entropy 0)."""
        big = 50.0  # softmax((50, 0, 0)) = (1, 0, 0) to 1e-21
        q = torch.tensor([[math.log(3.0), 0.0, big, 0.0, 0.0], [0.0, 0.0, big, 0.0, 0.0]])
        marginal_kl, entropy = real_code_terms(q, (2, 3))
        h = lambda *p: -sum(x * math.log(x) for x in p if x > 0)  # noqa: E731
        pbar = (5 / 8, 3 / 8)  # the mean of (3/4, 1/4) and (1/2, 1/2)
        assert marginal_kl.item() == pytest.approx(math.log(2) - h(*pbar) + math.log(3), rel=1e-6)
        assert entropy.item() == pytest.approx((h(0.75, 0.25) + h(0.5, 0.5)) / 2, rel=1e-6)
        uniform = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
        assert real_code_terms(uniform, (2,))[0].item() == pytest.approx(0.0, abs=1e-7)

    def test_translate(self) -> None:
        """Whole-pixel moves with the edge repeated: (1, 0) moves a 3x3 image down a row (the
        top row repeated), (0, -1) left a column (the right column repeated), (0, 0) is the
        identity."""
        x = torch.arange(9.0).reshape(1, 1, 3, 3).repeat(3, 2, 1, 1)
        moved = translate(x, torch.tensor([[1, 0], [0, -1], [0, 0]]))
        assert moved[0, 0].tolist() == [[0, 1, 2], [0, 1, 2], [3, 4, 5]]
        assert moved[1, 1].tolist() == [[1, 2, 2], [4, 5, 5], [7, 8, 8]]
        assert torch.equal(moved[2], x[2])

    def test_code_consistency_closed_form(self) -> None:
        """KL(p || p') by hand for one Cat(2) code: p = (3/4, 1/4), p' = (1/2, 1/2); 0 when the
        moved image gives the same logits; the gradient reaches only the moved image's logits."""
        q = torch.tensor([[math.log(3.0), 0.0]], requires_grad=True)
        moved = torch.zeros(1, 2, requires_grad=True)
        kl = code_consistency(q, moved, (2,))
        expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
        assert kl.item() == pytest.approx(expected, rel=1e-6)
        kl.backward()
        assert q.grad is None
        assert moved.grad is not None
        # d KL / d logits' = softmax(logits') - p = (1/2 - 3/4, 1/2 - 1/4)
        assert moved.grad[0].tolist() == pytest.approx([-0.25, 0.25])
        assert code_consistency(q, q.detach().clone(), (2,)).item() == pytest.approx(0.0)

    @pytest.mark.parametrize(
        ("size", "fraction", "most"), [(16, 0.125, 2), (8, 0.125, 1), (8, 0.01, 1)]
    )
    def test_shifts_cover_the_range(self, size: int, fraction: float, most: int) -> None:
        """The consistency term's moves: whole pixels, every value of [-s, s] on both axes, s =
        max(1, round(fraction * size))."""

        class Step:
            def latents(self, n: int, dim: int) -> torch.Tensor:
                return torch.randn(n, dim, generator=torch.Generator().manual_seed(0))

        task = InfoGAN(consistency_translate=fraction)
        shifts = task._shifts(Step(), torch.zeros(4000, 1, size, size))  # type: ignore[arg-type]
        assert shifts.dtype == torch.int64
        for axis in (0, 1):
            assert set(shifts[:, axis].tolist()) == set(range(-most, most + 1))

    def test_uniform_from_normal(self) -> None:
        """Phi maps normal draws to uniform ones: quartiles at -0.674, 0, 0.674."""
        u = uniform_from_normal(torch.tensor([-0.6744897501960817, 0.0, 0.6744897501960817]))
        torch.testing.assert_close(u, torch.tensor([0.25, 0.5, 0.75]))

    def test_codes(self) -> None:
        """InfoGAN's latent is [noise, one-hot codes, continuous codes]; codes in range."""
        task = InfoGAN(categorical=[3, 2], continuous=1)
        cat, cont = task.codes_from_normal(
            torch.randn(1000, 3, generator=torch.Generator().manual_seed(0))
        )
        assert cat[:, 0].max() == 2
        assert cat[:, 1].max() == 1
        assert cat.min() == 0
        assert cont.abs().max() < 1
        z = task.latent(torch.zeros(1000, 2), cat, cont)
        assert z.shape == (1000, 2 + 3 + 2 + 1)
        assert torch.equal(z[:, 2:5].argmax(1), cat[:, 0])
        assert torch.equal(z[:, 7], cont[:, 0])


class TestConditional:
    def test_sample_inputs_route_labels(self) -> None:
        """sample_inputs carries the labels asked for (else 0, 1, ..., K-1 in turn) and sample
        feeds them to G(z, y): the same z with another label gives another image."""
        inner = nn.Sequential(nn.Linear(4 + 10, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))
        generators = {
            "generator": ConcatGenerator(inner, latent_dim=4, num_classes=10, embed_dim=None)
        }
        task = Conditional()
        labels = torch.tensor([7, 7, 3])
        inputs = task.sample_inputs(generators, None, 3, 0, labels=labels)
        assert torch.equal(inputs["label"], labels)
        assert inputs["z"].shape == (3, 4)
        torch.testing.assert_close(
            inputs["z"], torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
        )
        assert task.sample_inputs(generators, None, 12, 0)["label"].tolist() == [*range(10), 0, 1]
        images = task.sample(generators, inputs).images
        assert images.shape == (3, 1, 8, 8)
        same_z = {"z": inputs["z"][[0, 0]], "label": torch.tensor([7, 3])}
        pair = task.sample(generators, same_z).images
        torch.testing.assert_close(pair[0], images[0])
        assert not torch.allclose(pair[0], pair[1])

    def test_npz_with_labels(self, tmp_path: Path) -> None:
        """An npz archive with 'labels' and 'class_names' trains a conditional task; the run
        keeps the names."""
        import json

        import numpy as np

        rng = np.random.default_rng(0)
        path = tmp_path / "data.npz"
        np.savez(
            path,
            x=rng.integers(0, 256, (12, 8, 8), dtype=np.uint8),
            labels=np.arange(12) % 3,
            class_names=np.array(["cat", "dog", "eel"]),
        )
        document = tiny({"name": "conditional"}, data={"name": "npz", "path": str(path)})
        gt.check_training(document, tmp_path / "run")
        classes = json.loads((tmp_path / "run" / "classes.json").read_text())
        assert classes == {"classes": ["cat", "dog", "eel"]}

    def test_unconditioned_networks_are_refused(self, tmp_path: Path) -> None:
        """A plain dcgan generator in a conditional task: one line saying how to wrap it."""
        document = tiny({"name": "conditional"}, generator={"name": "dcgan", "channels": 4})
        config = gancore.parse_config(document, gancore.get_registry())
        with pytest.raises(ValueError, match="generator 'dcgan' is not class-conditional; wrap it"):
            gancore.train(config, tmp_path / "run", progress=False)

    def test_unlabelled_data_is_refused(self, tmp_path: Path) -> None:
        config = gancore.parse_config(
            tiny({"name": "conditional"}, data={"name": "toy2d"}), gancore.get_registry()
        )
        with pytest.raises(ValueError, match="the dataset must have classes and a 'label' key"):
            gancore.train(config, tmp_path / "run", progress=False)

    @pytest.mark.parametrize("fake_labels", ["data", "uniform"])
    def test_check_task(self, tmp_path: Path, fake_labels: str) -> None:
        """The conformance kit's training check, with R1 (extra = labels), an augmenter and EMA."""
        document = tiny(
            {"name": "conditional", "fake_labels": fake_labels},
            regularizers=[{"name": "r1", "gamma": 1.0}],
            augmenter={"name": "hflip"},
        )
        document["training"]["ema_half_life_images"] = 16
        events = gt.check_training(document, tmp_path / "run")
        assert events.step == 2

    def test_concat_both_sides(self, tmp_path: Path) -> None:
        """cGAN: concat generator and concat critic, hinge loss."""
        document = tiny(
            {"name": "conditional"},
            generator={
                "name": "concat",
                "latent_dim": 4,
                "inner": {"name": "dcgan", "channels": 4},
            },
            critic={"name": "concat", "inner": {"name": "dcgan", "channels": 4}},
            loss={"name": "hinge"},
        )
        gt.check_training(document, tmp_path / "run")

    def test_exact_resume(self, tmp_path: Path) -> None:
        """3 steps, stop, resume to 6 gives the weights of 6 straight (uniform fake labels)."""
        document = tiny({"name": "conditional", "fake_labels": "uniform"}, steps=6)
        assert_exact_resume(document, tmp_path)


class TestACGAN:
    def test_check_task_logs_accuracy(self, tmp_path: Path) -> None:
        """ACGAN trains and logs the classifier head's accuracy on real and fake images."""
        document = tiny({"name": "acgan"}, critic={"name": "dcgan", "channels": 4, "norm": "none"})
        gt.check_training(document, tmp_path / "run")
        text = (tmp_path / "run" / "metrics.jsonl").read_text()
        for key in ("classifier/accuracy-real", "classifier/accuracy-fake", "loss/classifier"):
            assert key in text
        weights, _ = gancore.load_checkpoint(
            gancore.find_checkpoint(tmp_path / "run" / "checkpoints")
        )
        assert weights["critics"]["critic.head.weight"].shape == (10, 4 * 4 * 4 * 4 // 4)


class TestInfoGAN:
    def test_check_task(self, tmp_path: Path) -> None:
        """InfoGAN trains on unlabelled toy points, and on digits with R1 and EMA."""
        gt.check_task(
            {"name": "infogan", "categorical": [3], "continuous": 1},
            tmp_path / "toy",
            generator={"name": "mlp", "latent_dim": 6, "hidden": 8, "depth": 1},
        )
        document = tiny(
            {"name": "infogan", "categorical": [10], "continuous": 2, "learn_std": True},
            generator={"name": "dcgan", "latent_dim": 16, "channels": 4},
            critic={"name": "dcgan", "channels": 4, "norm": "none"},
            regularizers=[{"name": "r1", "gamma": 1.0}],
        )
        gt.check_training(document, tmp_path / "digits")
        assert "info/categorical" in (tmp_path / "digits" / "metrics.jsonl").read_text()

    def test_real_code_terms_train(self, tmp_path: Path) -> None:
        """With the real-data terms on, a digits run trains and logs both terms."""
        document = tiny(
            {
                "name": "infogan",
                "categorical": [10],
                "continuous": 0,
                "real_marginal_weight": 1.0,
                "real_entropy_weight": 0.5,
            },
            generator={"name": "dcgan", "latent_dim": 14, "channels": 4},
            critic={"name": "dcgan", "channels": 4, "norm": "none"},
        )
        gt.check_training(document, tmp_path / "run")
        lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        train = [json.loads(line) for line in lines if '"train"' in line]
        assert train
        for record in train:  # both lie in [0, log 10] for one Cat(10) code
            assert 0 <= record["info/real-marginal-kl"] <= math.log(10)
            assert 0 <= record["info/real-entropy"] <= math.log(10)

    def test_real_consistency_train(self, tmp_path: Path) -> None:
        """With the consistency term on (and an augmenter), a digits run trains and logs the
        consistency KL, finite and >= 0."""
        document = tiny(
            {
                "name": "infogan",
                "categorical": [10],
                "continuous": 1,
                "real_marginal_weight": 1.0,
                "real_consistency_weight": 1.0,
            },
            generator={"name": "dcgan", "latent_dim": 15, "channels": 4},
            critic={"name": "dcgan", "channels": 4, "norm": "none"},
            augmenter={"name": "hflip"},
        )
        gt.check_training(document, tmp_path / "run")
        lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        train = [json.loads(line) for line in lines if '"train"' in line]
        assert train
        assert all(0 <= record["info/real-consistency"] < math.inf for record in train)

    def test_real_consistency_exact_resume(self, tmp_path: Path) -> None:
        """3 steps, stop, resume to 6 gives the weights of 6 straight (the moves of the
        consistency term come from the step's latents)."""
        task = {"name": "infogan", "real_marginal_weight": 1.0, "real_consistency_weight": 1.0}
        document = tiny(
            {**task, "categorical": [10], "continuous": 1},
            steps=6,
            generator={"name": "dcgan", "latent_dim": 15, "channels": 4},
            critic={"name": "dcgan", "channels": 4, "norm": "none"},
        )
        assert_exact_resume(document, tmp_path)

    def test_latent_too_small(self, tmp_path: Path) -> None:
        document = gt.tiny_run(2, task={"name": "infogan"})
        config = gancore.parse_config(document, gancore.get_registry())
        with pytest.raises(
            ValueError, match=r"latent_dim \(2\) must exceed the codes' size \(12\)"
        ):
            gancore.train(config, tmp_path / "run", progress=False)


@attrs.frozen
class MeanGap:
    """A generator loss term for the test: the gap between the critic's mean features on the
    real and the fake batch (feature matching's shape)."""

    player = "generator"
    interval = 1
    replaces_loss = False

    def loss_term(
        self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, extra: Any
    ) -> torch.Tensor:
        assert real.shape == fake.shape
        features: Any = critic.features  # type: ignore[operator]
        gap: torch.Tensor = (features(real).mean(0) - features(fake).mean(0)).abs().sum()
        return gap


class TestGeneratorLossTerms:
    @pytest.mark.parametrize("task", ["acgan", "infogan"])
    def test_tasks_pass_the_real_batch(self, task: str, tmp_path: Path) -> None:
        """ACGAN and InfoGAN give the real batch to generator loss terms (feature matching of
        gan-improved works with them): the term runs on real and fake batches and is logged."""
        registry = gancore.get_registry()
        registry.add(
            gancore.ComponentSpec("regularizer", "mean-gap", "test", MeanGap, MeanGap, ".")
        )
        options = {"name": "acgan"} if task == "acgan" else {"name": "infogan", "categorical": [10]}
        document = tiny(
            options,
            generator={"name": "dcgan", "latent_dim": 16, "channels": 4}
            if task == "infogan"
            else {"name": "concat", "latent_dim": 4, "inner": {"name": "dcgan", "channels": 4}},
            critic={"name": "dcgan", "channels": 4, "norm": "none"},
            regularizers=[{"name": "mean-gap"}],
        )
        config = gancore.parse_config(document, registry)
        gancore.train(config, tmp_path / "run", progress=False)
        assert "reg/mean-gap" in (tmp_path / "run" / "metrics.jsonl").read_text()


@pytest.mark.slow
class TestTwoProcesses:
    @pytest.mark.parametrize("task", ["conditional", "infogan"])
    def test_ranks_identical(self, tmp_path: Path, task: str) -> None:
        """`conditional`, and `infogan` with Q's three real-data terms (its extra critic pass on
        the moved images), in 2 gloo processes: both ranks end with the same weights."""
        import tomli_w

        if task == "conditional":
            document = tiny({"name": "conditional", "fake_labels": "uniform"}, steps=4)
        else:
            terms = {
                "real_marginal_weight": 1.0,
                "real_entropy_weight": 0.3,
                "real_consistency_weight": 1.0,
            }
            document = tiny(
                {"name": "infogan", "categorical": [10], "continuous": 1, **terms},
                steps=4,
                generator={"name": "dcgan", "latent_dim": 15, "channels": 4},
                critic={"name": "dcgan", "channels": 4, "norm": "none"},
            )
        document["training"].update(sample_every=0, checkpoint_every=4, log_every=2)
        (tmp_path / "run.toml").write_text(tomli_w.dumps(document))
        ranks = gt.train_processes(
            tmp_path / "run.toml", tmp_path / "two", env={"GANCORE_LOAD_PLUGINS": "gan-conditional"}
        )
        for key in ranks[0]:
            assert torch.equal(ranks[0][key], ranks[1][key]), key


@pytest.mark.slow
class TestExamples:
    @pytest.mark.parametrize("name", ["conditional-digits", "acgan-digits", "infogan-digits"])
    def test_example_trains(self, tmp_path: Path, name: str) -> None:
        """Each example trains 30 steps as shipped (shortened)."""
        import tomllib

        raw = tomllib.loads((EXAMPLES / f"{name}.toml").read_text())
        raw["run"]["steps"] = 30
        raw["training"].update(sample_every=30, checkpoint_every=30, log_every=10)
        for metric in raw.get("metrics", []):
            metric.update({"num_per_class": 5} if "num_per_class" in metric else {"num": 50})
        gt.check_training(raw, tmp_path / "run")
