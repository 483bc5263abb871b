"""The tasks: ``conditional`` (cGAN, projection), ``acgan`` and ``infogan``.

Each says what one critic step and one generator step compute; the loop does the rest. Labels
are the dataset's ``"label"``; random draws other than latents (uniform fake labels, InfoGAN's
codes) are made from ``step.latents`` through the normal CDF, so that they follow the loop's
per-step, per-process streams and resume exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import torch
import torch.nn.functional as F
from torch import nn

import gancore
from gan_conditional.networks import AuxiliaryCritic, LabelledBuildContext

__all__ = [
    "ACGAN",
    "Conditional",
    "InfoGAN",
    "acgan_losses",
    "code_consistency",
    "info_loss",
    "real_code_terms",
    "translate",
    "uniform_from_normal",
]

FAKE_LABELS = ("data", "uniform")


def uniform_from_normal(normal: torch.Tensor) -> torch.Tensor:
    """``Phi(normal)``: standard-normal draws mapped to uniform ``[0, 1)`` draws."""
    return torch.special.ndtr(normal).clamp(max=1.0 - 1e-7)


def _classes(task: str, dataset: Any) -> int:
    classes = getattr(dataset, "classes", None)
    if "label" not in dataset.shapes or not classes:
        raise ValueError(
            f"task {task!r}: the dataset must have classes and a 'label' key (got keys "
            f"{sorted(dataset.shapes)}; 'digits', 'image-folder' with labels = 'subfolders' and "
            "'npz' with a labels array have them)"
        )
    return len(classes)


def _conditional_network(
    task: str, context: gancore.TaskBuildContext, section: str, classes: int
) -> nn.Module:
    """``[generator]`` or ``[critic]`` built with the class count; it must take labels."""
    component = getattr(context.config, section)
    if component is None:
        raise ValueError(f"task {task!r} needs a [{section}] section")
    shape = tuple(context.dataset.shapes["x"])
    module = component.build(LabelledBuildContext(data_shape=shape, num_classes=classes))
    if getattr(module, "num_classes", None) != classes:
        name = component.name.rpartition(":")[2]
        wrappers = (
            "'concat' or 'conditional-batchnorm'"
            if section == "generator"
            else ("'concat' or 'projection'")
        )
        raise ValueError(
            f"task {task!r}: {section} {name!r} is not class-conditional; wrap it: "
            f'[{section}] name = {wrappers} with inner = {{ name = "{name}", ... }}'
        )
    if not isinstance(module, nn.Module):
        raise ValueError(f"task {task!r}: {section} {component.name!r} is not a torch.nn.Module")
    return module


def _feature_critic(task: str, context: gancore.TaskBuildContext) -> nn.Module:
    critic = context.build_critic()
    if not all(hasattr(critic, a) for a in ("features", "score", "feature_dim")):
        name = context.config.critic.name if context.config.critic else "?"
        raise ValueError(
            f"task {task!r}: critic {name!r} does not expose its features (features, score, "
            "feature_dim: gancore.protocols.FeatureCritic); the head shares its body"
        )
    return critic


def _labelled_fakes(
    option: str, step: gancore.StepContext, labels: torch.Tensor, record: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``G(z, y)`` and ``y`` for one batch: fake labels drawn as ``fake_labels`` says
    (``conditional`` and ``acgan``). ``record``: the generator step's latents are recorded for
    the generator regularizers (gan-biggan's ``orthogonal``), which run on what it records."""
    generator: Any = step.unwrap("generator")
    fake_labels = _fake_labels(option, step, labels, int(generator.num_classes))
    z = step.latents(labels.shape[0], int(generator.latent_dim))
    if record:
        step.record_generator_inputs("generator", z)
    return step.generators["generator"](z, fake_labels), fake_labels


def _fake_labels(
    how: str, step: gancore.StepContext, labels: torch.Tensor, classes: int
) -> torch.Tensor:
    """Labels of the fakes: the batch's own ("data": the data's class frequencies) or uniform."""
    if how == "data":
        return labels
    u = uniform_from_normal(step.latents(labels.shape[0], 1)[:, 0])
    return (u * classes).long().clamp(max=classes - 1)


def _sample_labels(num: int, classes: int, labels: torch.Tensor | None) -> torch.Tensor:
    return torch.arange(num) % classes if labels is None else labels.to(torch.int64)


def _critic_loss_two_labels(
    step: gancore.StepContext,
    real: torch.Tensor,
    labels: torch.Tensor,
    fake: torch.Tensor,
    fake_labels: torch.Tensor,
) -> torch.Tensor:
    """``step.critic_loss`` when real and fake carry different labels (``fake_labels =
    "uniform"``): the same loss and logs; the regularizers are recorded with the real labels."""
    fake = fake.detach()
    scorer = step.scorer("critic")
    real_scores = scorer(real, labels)
    fake_scores = scorer(fake, fake_labels)
    total = step.loss.critic_loss(real_scores, fake_scores)
    step.log("loss/critic", total)
    step.log("scores/real", real_scores.detach().mean())
    step.log("scores/fake", fake_scores.detach().mean())
    step.critic_calls.append(("critic", real.detach(), fake, (labels,)))
    return total


def _fake_labels_field() -> Any:
    return attrs.field(
        default="data",
        validator=attrs.validators.in_(FAKE_LABELS),
        metadata={
            "doc": "labels of the generated samples: 'data' (the batch's own labels, so the "
            "data's class frequencies) or 'uniform' (every class equally often)"
        },
    )


# -------------------------------------------------------------------------------------------------
# conditional: G(z, y), D(x, y)
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Conditional:
    """Class-conditional GAN: ``G(z, y)`` and ``D(x, y)`` (Mirza & Osindero 2014; with a
    ``projection`` critic, Miyato & Koyama 2018).

    The networks take labels through a conditioning wrapper (generator ``concat`` or
    ``conditional-batchnorm``, critic ``concat`` or ``projection``) around any network. The critic
    scores real ``(x, y)`` and ``(G(z, y'), y')``; the generator is scored on ``(G(z, y'), y')``.
    Labels go to the critic as its ``extra`` input: the augmenter and the gradient penalties
    see only the images.
    """

    conditional: ClassVar[bool] = True  # declares classes: sample_inputs takes labels
    fake_labels: str = _fake_labels_field()

    def build(self, context: gancore.TaskBuildContext) -> tuple[dict[str, nn.Module], ...]:
        classes = _classes("conditional", context.dataset)
        generator = _conditional_network("conditional", context, "generator", classes)
        critic = _conditional_network("conditional", context, "critic", classes)
        return {"generator": generator}, {"critic": critic}

    def critic_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        real, labels = batch["x"], batch["label"]
        with torch.no_grad():  # the critic's step never needs the generator's graph
            fake, fake_labels = _labelled_fakes(self.fake_labels, step, labels)
        if fake_labels is labels:
            return step.critic_loss("critic", real, fake, labels)
        return _critic_loss_two_labels(step, real, labels, fake, fake_labels)

    def generator_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        fake, fake_labels = _labelled_fakes(self.fake_labels, step, batch["label"], record=True)
        # Generator loss terms (gan-improved's feature matching) score real and fake with the same
        # labels: offered only when the fakes carry the batch's own labels (fake_labels = "data").
        real = batch["x"] if fake_labels is batch["label"] else None
        return step.generator_loss("critic", fake, fake_labels, real=real)

    def sample_inputs(
        self,
        generators: Mapping[str, nn.Module],
        dataset: Any,
        num: int,
        seed: int,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        generator = generators["generator"]
        dim = int(generator.latent_dim)  # type: ignore[arg-type]
        z = torch.randn(num, dim, generator=torch.Generator().manual_seed(seed))
        return {"z": z, "label": _sample_labels(num, int(generator.num_classes), labels)}  # type: ignore[arg-type]

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        return gancore.SampleGrid(images=generators["generator"](inputs["z"], inputs["label"]))


# -------------------------------------------------------------------------------------------------
# acgan: auxiliary classifier on the critic's body
# -------------------------------------------------------------------------------------------------


def acgan_losses(
    loss: Any,
    real_scores: torch.Tensor,
    fake_scores: torch.Tensor,
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    labels: torch.Tensor,
    fake_labels: torch.Tensor,
    weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(critic loss, generator loss) of ACGAN (Odena et al. 2017, Eqs. 2-3) for an adversarial
    ``loss``: with ``L_C = E[log P(C=c|x_real)] + E[log P(C=c|x_fake)]`` (minus two
    cross-entropies), the critic minimises ``loss.critic_loss - weight * L_C`` (maximises
    ``L_S + L_C``) and the generator ``loss.generator_loss + weight * CE(fake)`` (maximises
    ``L_C - L_S``; the real term of ``L_C`` does not depend on it)."""
    ce_real = F.cross_entropy(real_logits, labels)
    ce_fake = F.cross_entropy(fake_logits, fake_labels)
    critic = loss.critic_loss(real_scores, fake_scores) + weight * (ce_real + ce_fake)
    generator = loss.generator_loss(fake_scores) + weight * ce_fake
    return critic, generator


@attrs.frozen(kw_only=True)
class ACGAN:
    """Auxiliary Classifier GAN (Odena et al. 2017, "Conditional Image Synthesis with Auxiliary
    Classifier GANs"): ``G(z, y)``; the critic, unconditional, gets a classifier head on its
    features (the critic player's part ``head``, a linear layer to ``K`` logits).

    The critic maximises ``L_S + L_C`` and the generator ``L_C - L_S``; ``L_S`` is the configured
    adversarial loss (``non-saturating``/``bce``: the paper's log-likelihood of the source) and
    ``L_C`` the log-likelihood of the right class on real and generated images, weighted by
    ``classifier_weight``. Logs ``loss/classifier`` and ``classifier/accuracy-real`` and
    ``classifier/accuracy-fake`` (the head's accuracy on real and generated images).
    """

    conditional: ClassVar[bool] = True
    classifier_weight: float = attrs.field(
        default=1.0,
        validator=attrs.validators.ge(0),
        metadata={"doc": "weight of the class log-likelihood L_C against L_S, >= 0 (paper: 1)"},
    )
    fake_labels: str = _fake_labels_field()

    def build(self, context: gancore.TaskBuildContext) -> tuple[dict[str, nn.Module], ...]:
        classes = _classes("acgan", context.dataset)
        generator = _conditional_network("acgan", context, "generator", classes)
        body = _feature_critic("acgan", context)
        head = nn.Linear(int(body.feature_dim), classes)  # type: ignore[arg-type]
        return {"generator": generator}, {"critic": AuxiliaryCritic(body, head)}

    def critic_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        real, labels = batch["x"], batch["label"]
        with torch.no_grad():
            fake, fake_labels = _labelled_fakes(self.fake_labels, step, labels)
        critic: Any = step.unwrap("critic")
        with critic.heads() as heads:  # the head's logits of the two calls: real, then fake
            adversarial = step.critic_loss("critic", real, fake)
        real_logits, fake_logits = heads
        ce_real = F.cross_entropy(real_logits, labels)
        ce_fake = F.cross_entropy(fake_logits, fake_labels)
        step.log("loss/classifier", ce_real + ce_fake)
        step.log("classifier/accuracy-real", _accuracy(real_logits, labels))
        step.log("classifier/accuracy-fake", _accuracy(fake_logits, fake_labels))
        return adversarial + self.classifier_weight * (ce_real + ce_fake)

    def generator_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        fake, fake_labels = _labelled_fakes(self.fake_labels, step, batch["label"], record=True)
        critic: Any = step.unwrap("critic")
        with critic.heads() as heads:
            adversarial = step.generator_loss("critic", fake, real=batch["x"])
        (fake_logits,) = heads
        return adversarial + self.classifier_weight * F.cross_entropy(fake_logits, fake_labels)

    sample_inputs = Conditional.sample_inputs
    sample = Conditional.sample


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.detach().argmax(dim=1) == labels).float().mean()


# -------------------------------------------------------------------------------------------------
# infogan: latent codes and a Q head
# -------------------------------------------------------------------------------------------------


def _categorical(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _each_at_least_two(instance: Any, attribute: Any, value: tuple[int, ...]) -> None:
    if any(k < 2 for k in value):
        raise ValueError(f"'{attribute.name}' must hold class counts >= 2 (got {list(value)})")


def info_loss(
    q_out: torch.Tensor,
    categorical: torch.Tensor,
    continuous: torch.Tensor,
    sizes: tuple[int, ...],
    std: float | None,
    categorical_weight: float,
    continuous_weight: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(weighted loss, L_I of the categorical codes, L_I of the continuous codes)``.

    ``L_I = E[log Q(c|x)] + H(c)`` (Chen et al. 2016, Eq. 5), summed over codes. Categorical code
    ``j`` with ``K_j`` values: ``Q`` gives ``K_j`` logits, ``log Q(c|x) = -CE``, ``H(c) = log
    K_j``. Continuous code ~ U(-1, 1): ``Q`` gives a mean (and a log std when ``std`` is None, else
    the std is fixed) of a Gaussian, ``log Q(c|x) = -log(sigma sqrt(2 pi)) - (c - mu)^2 / (2
    sigma^2)``, ``H(c) = log 2``. The loss is ``-(categorical_weight * sum_cat E[log Q] +
    continuous_weight * sum_cont E[log Q])``; the constant entropies do not enter it.
    """
    offset, log_q_cat = 0, q_out.new_zeros(())
    entropy_cat = 0.0
    for j, k in enumerate(sizes):
        log_q_cat = log_q_cat - F.cross_entropy(q_out[:, offset : offset + k], categorical[:, j])
        entropy_cat += math.log(k)
        offset += k
    count = continuous.shape[1]
    log_q_cont = q_out.new_zeros(())
    if count:
        mean = q_out[:, offset : offset + count]
        if std is None:
            log_std = q_out[:, offset + count : offset + 2 * count]
        else:
            log_std = torch.full_like(mean, math.log(std))
        log_q = (
            -log_std
            - 0.5 * math.log(2 * math.pi)
            - (continuous - mean) ** 2 / (2 * torch.exp(2 * log_std))
        )
        log_q_cont = log_q.sum(dim=1).mean()
    loss = -(categorical_weight * log_q_cat + continuous_weight * log_q_cont)
    return loss, log_q_cat + entropy_cat, log_q_cont + count * math.log(2.0)


def real_code_terms(
    q_out: torch.Tensor, sizes: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(marginal KL, mean entropy)`` of ``Q``'s categorical codes on a batch of real images,
    each summed over the codes.

    For code ``j`` with ``K_j`` values and ``p_i = softmax`` of its logits on image ``i``: the
    marginal ``pbar = mean_i p_i``, ``KL(pbar || U) = log K_j - H(pbar)`` (0 when the batch
    uses every value equally), and ``mean_i H(p_i)`` (0 when ``Q`` is certain of every image).
    Minimising both is maximising ``H(pbar) - mean_i H(p_i)``, the estimate of the mutual
    information between images and classes of CatGAN (Springenberg 2016, after Krause et al.
    2010's regularized information maximization).
    """
    marginal_kl, entropy = q_out.new_zeros(()), q_out.new_zeros(())
    for k, logits in zip(sizes, _code_logits(q_out, sizes), strict=True):
        log_p = F.log_softmax(logits.float(), dim=1)
        p = log_p.exp()
        pbar = p.mean(dim=0)
        marginal_kl = marginal_kl + math.log(k) + (pbar * torch.log(pbar.clamp_min(1e-12))).sum()
        entropy = entropy - (p * log_p).sum(dim=1).mean()
    return marginal_kl, entropy


def _code_logits(q_out: torch.Tensor, sizes: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """``Q``'s logits of each categorical code: the first ``sum(sizes)`` columns, split."""
    return q_out[:, : sum(sizes)].split(list(sizes), dim=1)


def translate(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Images ``x`` ``[N, C, H, W]`` moved by whole pixels: image ``i`` by ``shifts[i] = (dy,
    dx)`` (ints; positive: down, right), the edge rows and columns repeated into the space
    uncovered (``out[i, :, r, c] = x[i, :, clamp(r - dy), clamp(c - dx)]``)."""
    n, _, h, w = x.shape
    rows = (torch.arange(h, device=x.device) - shifts[:, :1]).clamp(0, h - 1)  # [N, H]
    cols = (torch.arange(w, device=x.device) - shifts[:, 1:]).clamp(0, w - 1)  # [N, W]
    index = rows[:, None, :, None].expand(n, x.shape[1], h, w)
    x = x.gather(2, index)
    return x.gather(3, cols[:, None, None, :].expand(n, x.shape[1], h, w))


def code_consistency(
    q_out: torch.Tensor, q_moved: torch.Tensor, sizes: tuple[int, ...]
) -> torch.Tensor:
    """``mean_i KL(p_i || p'_i)`` summed over the categorical codes: ``p_i`` the softmax of
    ``Q``'s logits on image ``i`` (held fixed: no gradient), ``p'_i`` on its moved copy.

    The self-augmented training term of IMSAT (Hu et al. 2017): the code ``Q`` reads from an
    image should not change when the image moves by a pixel or two. Its gradient is that of the
    cross-entropy ``-sum_c p_i(c) log p'_i(c)``.
    """
    total = q_out.new_zeros(())
    pairs = zip(_code_logits(q_out, sizes), _code_logits(q_moved, sizes), strict=True)
    for logits, moved in pairs:
        log_p = F.log_softmax(logits.detach().float(), dim=1)
        log_q = F.log_softmax(moved.float(), dim=1)
        total = total + (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()
    return total


@attrs.frozen(kw_only=True)
class InfoGAN:
    """InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information
    Maximizing Generative Adversarial Nets"): ``min_{G,Q} max_D V(D, G) - lambda L_I(G, Q)``.

    The generator's latent is ``[noise, onehot(c_1), ..., onehot(c_m), u_1, ..., u_n]``: the
    configured generator's ``latent_dim`` holds the noise and the codes. ``Q`` is a head on the
    critic's body (the critic player's part ``head``: hidden layer, batch norm, LeakyReLU 0.1,
    outputs).
    As in the authors' code, ``lambda * L_I`` (on generated images) enters both the critic's loss
    (training the body and ``Q``) and the generator's. No labels are used. Logs
    ``info/categorical`` and ``info/continuous`` (the bounds ``L_I``, in nats).

    Beyond the paper, ``Q`` can also be trained on the real images (the ``real_*`` weights, 0 by
    default): :func:`real_code_terms` (CatGAN's marginal and entropy terms) and
    :func:`code_consistency` under :func:`translate` moves (IMSAT's self-augmented training).
    """

    categorical: tuple[int, ...] = attrs.field(
        default=(10,),
        converter=_categorical,
        validator=_each_at_least_two,
        metadata={"doc": "values of each categorical code, e.g. [10] (MNIST: one Cat(10))"},
    )
    continuous: int = attrs.field(
        default=2,
        validator=attrs.validators.ge(0),
        metadata={"doc": "number of continuous codes ~ U(-1, 1), >= 0 (MNIST: 2)"},
    )
    categorical_weight: float = attrs.field(
        default=1.0,
        validator=attrs.validators.ge(0),
        metadata={"doc": "lambda of the categorical codes' L_I, >= 0 (paper: 1)"},
    )
    continuous_weight: float = attrs.field(
        default=0.1,
        validator=attrs.validators.ge(0),
        metadata={"doc": "lambda of the continuous codes' L_I, >= 0 (paper: smaller than 1)"},
    )
    continuous_std: float = attrs.field(
        default=1.0,
        validator=attrs.validators.gt(0),
        metadata={"doc": "fixed std of Q's Gaussian for continuous codes, > 0 (unless learn_std)"},
    )
    learn_std: bool = attrs.field(
        default=False,
        metadata={"doc": "true: Q also predicts each continuous code's log std"},
    )
    head_hidden: int = attrs.field(
        default=128,
        validator=attrs.validators.ge(1),
        metadata={"doc": "units of the Q head's hidden layer, >= 1 (paper: 128)"},
    )
    head_batchnorm: bool = attrs.field(
        default=True,
        metadata={"doc": "batch norm after the Q head's hidden layer (paper: yes)"},
    )
    real_marginal_weight: float = attrs.field(
        default=0.0,
        validator=attrs.validators.ge(0),
        metadata={
            "doc": "weight of KL(mean Q(c|x) over a real batch || uniform) per categorical code "
            "in the critic's loss, >= 0 (0: the paper; not in InfoGAN, the marginal term of "
            "CatGAN, Springenberg 2016)"
        },
    )
    real_entropy_weight: float = attrs.field(
        default=0.0,
        validator=attrs.validators.ge(0),
        metadata={
            "doc": "weight of the mean entropy of Q(c|x) on real images per categorical code in "
            "the critic's loss, >= 0 (0: the paper; CatGAN's conditional-entropy term)"
        },
    )
    real_consistency_weight: float = attrs.field(
        default=0.0,
        validator=attrs.validators.ge(0),
        metadata={
            "doc": "weight of KL(Q(c|x) || Q(c|moved x)) on real images per categorical code in "
            "the critic's loss, >= 0 (0: the paper; IMSAT's self-augmented training, Hu et al. "
            "2017)"
        },
    )
    consistency_translate: float = attrs.field(
        default=0.125,
        validator=[attrs.validators.gt(0), attrs.validators.le(0.5)],
        metadata={
            "doc": "largest move of the consistency term, as a fraction of the image's height "
            "and width, in (0, 0.5] (rounded to whole pixels, at least 1)"
        },
    )

    @property
    def code_dim(self) -> int:
        """Size of the codes in the generator's latent."""
        return sum(self.categorical) + self.continuous

    @property
    def head_dim(self) -> int:
        """Outputs of the Q head: logits of each categorical code, then the continuous means
        (and log stds when learned)."""
        return sum(self.categorical) + self.continuous * (2 if self.learn_std else 1)

    def build(self, context: gancore.TaskBuildContext) -> tuple[dict[str, nn.Module], ...]:
        if not self.categorical and not self.continuous:
            raise ValueError("task 'infogan': no codes (categorical = [] and continuous = 0)")
        generator = context.build_generator()
        latent_dim = getattr(generator, "latent_dim", None)
        if not isinstance(latent_dim, int) or latent_dim <= self.code_dim:
            raise ValueError(
                f"task 'infogan': the generator's latent_dim ({latent_dim}) must exceed the "
                f"codes' size ({self.code_dim}): it holds the noise and the codes"
            )
        body = _feature_critic("infogan", context)
        head = nn.Sequential(
            nn.Linear(int(body.feature_dim), self.head_hidden),  # type: ignore[arg-type]
            nn.BatchNorm1d(self.head_hidden) if self.head_batchnorm else nn.Identity(),
            nn.LeakyReLU(0.1),
            nn.Linear(self.head_hidden, self.head_dim),
        )
        return {"generator": generator}, {"critic": AuxiliaryCritic(body, head)}

    def latent(
        self, noise: torch.Tensor, categorical: torch.Tensor, continuous: torch.Tensor
    ) -> torch.Tensor:
        """``[noise, onehot(c_1), ..., u]``: the generator's input."""
        parts = [noise]
        parts += [
            F.one_hot(categorical[:, j], k).to(noise.dtype) for j, k in enumerate(self.categorical)
        ]
        return torch.cat([*parts, continuous.to(noise.dtype)], dim=1)

    def codes_from_normal(self, normal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes from standard-normal draws ``[N, m + n]``: categorical ``[N, m]`` int64 uniform
        over each code's values, continuous ``[N, n]`` uniform on ``(-1, 1)``."""
        u = uniform_from_normal(normal)
        m = len(self.categorical)
        sizes = torch.tensor(self.categorical, device=normal.device)
        categorical = (u[:, :m] * sizes).long()
        return categorical, 2 * u[:, m:] - 1

    def _fakes(self, step: gancore.StepContext, n: int) -> tuple[torch.Tensor, ...]:
        dim = int(step.unwrap("generator").latent_dim)  # type: ignore[arg-type]
        noise = step.latents(n, dim - self.code_dim)
        categorical, continuous = self.codes_from_normal(
            step.latents(n, len(self.categorical) + self.continuous)
        )
        z = self.latent(noise, categorical, continuous)
        return z, categorical, continuous

    def _info(
        self, step: gancore.StepContext, q_out: torch.Tensor, cat: torch.Tensor, cont: torch.Tensor
    ) -> torch.Tensor:
        loss, bound_cat, bound_cont = info_loss(
            q_out,
            cat,
            cont,
            self.categorical,
            None if self.learn_std else self.continuous_std,
            self.categorical_weight,
            self.continuous_weight,
        )
        if self.categorical:
            step.log("info/categorical", bound_cat)
        if self.continuous:
            step.log("info/continuous", bound_cont)
        return loss

    def critic_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        real = batch["x"]
        z, cat, cont = self._fakes(step, real.shape[0])
        with torch.no_grad():
            fake = step.generators["generator"](z)
        critic: Any = step.unwrap("critic")
        with critic.heads() as heads:
            adversarial = step.critic_loss("critic", real, fake)
        q_real, q_out = heads
        loss = adversarial + self._info(step, q_out, cat, cont)
        if self.categorical and (self.real_marginal_weight or self.real_entropy_weight):
            marginal_kl, entropy = real_code_terms(q_real, self.categorical)
            step.log("info/real-marginal-kl", marginal_kl)
            step.log("info/real-entropy", entropy)
            loss = loss + self.real_marginal_weight * marginal_kl
            loss = loss + self.real_entropy_weight * entropy
        if self.categorical and self.real_consistency_weight:
            moved = translate(real, self._shifts(step, real))
            with critic.heads() as heads:
                step.scorer("critic")(moved)  # the augmenter, if any, sees it too
            (q_moved,) = heads
            consistency = code_consistency(q_real, q_moved, self.categorical)
            step.log("info/real-consistency", consistency)
            loss = loss + self.real_consistency_weight * consistency
        return loss

    def _shifts(self, step: gancore.StepContext, real: torch.Tensor) -> torch.Tensor:
        """Per-image whole-pixel moves ``(dy, dx)``, uniform in ``[-s, s]`` with ``s =
        max(1, round(consistency_translate * size))``, drawn from ``step.latents``."""
        size = torch.tensor(real.shape[2:], device=real.device)
        most = (self.consistency_translate * size).round().clamp_min(1).long()
        u = uniform_from_normal(step.latents(real.shape[0], 2))
        return (u * (2 * most + 1)).long() - most

    def generator_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        z, cat, cont = self._fakes(step, batch["x"].shape[0])
        step.record_generator_inputs("generator", z)
        fake = step.generators["generator"](z)
        critic: Any = step.unwrap("critic")
        with critic.heads() as heads:
            adversarial = step.generator_loss("critic", fake, real=batch["x"])
        (q_out,) = heads
        return adversarial + self._info(step, q_out, cat, cont)

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Any, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        """Noise and codes from ``seed``; the first categorical code takes its values in turn
        (sample ``i`` has value ``i mod K``: a grid ``K`` wide shows one value per column)."""
        gen = torch.Generator().manual_seed(seed)
        dim = int(generators["generator"].latent_dim)  # type: ignore[arg-type]
        noise = torch.randn(num, dim - self.code_dim, generator=gen)
        normal = torch.randn(num, len(self.categorical) + self.continuous, generator=gen)
        categorical, continuous = self.codes_from_normal(normal)
        if self.categorical:
            categorical[:, 0] = torch.arange(num) % self.categorical[0]
        return {"z": self.latent(noise, categorical, continuous), "categorical": categorical}

    def code_names(self) -> list[str]:
        """The codes' names in the latent's order, numbered as Chen et al. 2016 do: ``c1 ..
        cm`` the categorical codes, then the continuous ones (MNIST: ``c1`` the digit,
        ``c2``, ``c3`` continuous)."""
        return [f"c{i + 1}" for i in range(len(self.categorical) + self.continuous)]

    def describe_code(self, name: str) -> str:
        """``"c1 (categorical, 10 values)"`` or ``"c2 (continuous)"``."""
        index = self.code_names().index(name)
        if index < len(self.categorical):
            return f"{name} (categorical, {self.categorical[index]} values)"
        return f"{name} (continuous)"

    def code_sweep(
        self,
        generators: Mapping[str, nn.Module],
        name: str,
        values: torch.Tensor,
        columns: int,
        seed: int,
    ) -> dict[str, torch.Tensor]:
        """Inputs of the paper's latent-traversal grids (Chen et al. 2016, Fig. 2): row ``r`` sets
        code ``name`` to ``values[r]`` (a category index, or a continuous value), column ``c``
        holds noise and other codes drawn from ``seed`` as :meth:`sample_inputs` draws them,
        the same in every row. Sample ``r * columns + c``."""
        index = self.code_names().index(name)
        gen = torch.Generator().manual_seed(seed)
        dim = int(generators["generator"].latent_dim)  # type: ignore[arg-type]
        noise = torch.randn(columns, dim - self.code_dim, generator=gen)
        normal = torch.randn(columns, len(self.categorical) + self.continuous, generator=gen)
        categorical, continuous = self.codes_from_normal(normal)
        rows = len(values)
        noise = noise.repeat(rows, 1)
        categorical, continuous = categorical.repeat(rows, 1), continuous.repeat(rows, 1)
        per_sample = values.repeat_interleave(columns)
        m = len(self.categorical)
        if index < m:
            categorical[:, index] = per_sample.to(torch.int64)
        else:
            continuous[:, index - m] = per_sample.to(continuous.dtype)
        return {"z": self.latent(noise, categorical, continuous), "categorical": categorical}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        columns = self.categorical[0] if self.categorical else None
        return gancore.SampleGrid(images=generators["generator"](inputs["z"]), columns=columns)
