"""Metrics of a ``vae`` run's encoder and decoder on (held-out) images: ``elbo`` and ``iwae``.

- ``elbo``: the evidence lower bound ``E_q[log p(x|z)] - KL(q(z|x) || p(z))`` per image, the
  expectation estimated with ``samples`` draws of ``z`` and the KL in closed form (Kingma &
  Welling 2014, Eq. 10).
- ``iwae``: the importance-weighted bound ``log (1/k) sum_i p(x, z_i) / q(z_i|x)``, ``z_i ~
  q(z|x)`` (Burda et al. 2016, "Importance Weighted Autoencoders", Eq. 8), an estimate of
  ``log p(x)`` from below that tightens as ``k`` grows (Theorem 1); Burda et al. evaluate with
  k = 5000.

Both in nats per image on the ``[-1, 1]`` scale and in bits per dimension (see
:mod:`gan_vae.elbo` for the conventions), averaged over the images with an exactly rounded sum.

Which images: ``data``, a dataset table like ``[data]`` (e.g. ``{ name = "digits", limit = 1500,
rest = true }``: the 297 digits that a run on ``{ name = "digits", limit = 1500 }`` never sees);
without it, the run's own dataset, which is the training data (the protocol says so, and such a
value measures fit, not generalization). ``num`` images are taken from a permutation seeded by
``seed`` (all of them when ``num`` is unset). The noise of image ``i`` comes from a generator
seeded by ``(seed, i)``, so values do not depend on ``batch_size``.

The metrics read the run's task (``vae``) and its generators (decoder ``generator``, encoder
``encoder`` and the learned ``likelihood``; the EMA copies when the run keeps them) from the
metric context of gancore's loop and ``gan eval``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from typing import Any

import attrs
import torch

import gancore  # at run time: option types are read with get_type_hints
from gan_vae.elbo import bits_per_dim
from gan_vae.vae import VAE

__all__ = ["ELBO", "IWAE", "build_elbo", "build_iwae"]


def _count(minimum: int) -> Any:
    return [attrs.validators.instance_of(int), attrs.validators.ge(minimum)]


def _data_field() -> Any:
    return attrs.field(
        default=None,
        metadata={
            "doc": "the images to score, a dataset table as [data] takes (held-out data, e.g. "
            '{ name = "digits", limit = 1500, rest = true }); None = the run\'s dataset (the '
            "training data)"
        },
    )


def _num_field() -> Any:
    return attrs.field(
        default=None,
        validator=attrs.validators.optional(_count(1)),
        metadata={"doc": "images scored, >= 1, a seeded draw without replacement; None = all"},
    )


def _batch_field() -> Any:
    return attrs.field(
        default=100,
        validator=_count(1),
        metadata={"doc": "images per batch, >= 1 (memory, not result)"},
    )


def _seed_field() -> Any:
    return attrs.field(
        default=0,
        validator=_count(0),
        metadata={"doc": "seed of the image draw and of the noise eps; >= 0"},
    )


@attrs.frozen(kw_only=True)
class ELBO:
    """Options of the ``elbo`` metric (module docstring)."""

    samples: int = attrs.field(
        default=1,
        validator=_count(1),
        metadata={"doc": "draws of z per image for E_q[log p(x|z)]; >= 1"},
    )
    num: int | None = _num_field()
    batch_size: int = _batch_field()
    seed: int = _seed_field()
    data: dict[str, Any] | None = _data_field()  # noqa: RUF009 (returns attrs.field)


@attrs.frozen(kw_only=True)
class IWAE:
    """Options of the ``iwae`` metric (module docstring)."""

    k: int = attrs.field(
        default=100,
        validator=_count(1),
        metadata={"doc": "importance samples per image (Burda et al. 2016 use 5000); >= 1"},
    )
    num: int | None = _num_field()
    batch_size: int = _batch_field()
    seed: int = _seed_field()
    data: dict[str, Any] | None = _data_field()  # noqa: RUF009 (returns attrs.field)


class _VAEMetric:
    """What ``elbo`` and ``iwae`` share: the images, the noise, the context checks."""

    name = ""

    def __init__(self, options: ELBO | IWAE, dataset: Any) -> None:
        self.options = options
        self.dataset = dataset  # the ``data`` dataset, or None for the run's own

    def _vae(self, context: Any) -> tuple[VAE, Any]:
        task = getattr(context, "task", None)
        generators = getattr(context, "generators", None)
        if not isinstance(task, VAE) or generators is None:
            got = type(task).__name__ if task is not None else "no task"
            raise ValueError(
                f"metric {self.name!r}: needs a run of task 'vae' (its encoder and likelihood), "
                f"through the training loop or gan eval (got {got})"
            )
        return task, generators

    def _images(self, context: Any) -> tuple[Any, torch.Tensor, str]:
        data = self.dataset
        which = "data option"
        if data is None:
            data = getattr(context, "full_dataset", context.dataset)
            which = "the run's dataset (training data)"
        count = len(data)
        num = self.options.num if self.options.num is not None else count
        if num > count:
            raise ValueError(
                f"metric {self.name!r}: 'num' is {num} but the data holds {count} images"
            )
        order = torch.randperm(count, generator=torch.Generator().manual_seed(self.options.seed))
        return data, order[:num], which

    def _batches(self, context: Any, draws: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(images [B, C, H, W], eps [B, draws, latent_dim])`` on the context's device."""
        data, rows, _ = self._images(context)
        _, generators = self._vae(context)
        dim = int(generators["generator"].latent_dim)
        for start in range(0, len(rows), self.options.batch_size):
            chunk = rows[start : start + self.options.batch_size].tolist()
            images = torch.stack([data[i]["x"] for i in chunk]).to(context.device)
            eps = torch.stack(
                [
                    torch.randn(
                        draws,
                        dim,
                        generator=torch.Generator().manual_seed(self.options.seed * 1_000_003 + i),
                    )
                    for i in chunk
                ]
            )
            yield images, eps.to(context.device)

    def _protocol(self, context: Any, images_hash: str, **extra: Any) -> dict[str, Any]:
        task, _ = self._vae(context)
        _data, rows, which = self._images(context)
        return {
            "metric": self.name,
            "data": self.options.data if self.options.data is not None else which,
            "num_images": len(rows),
            "seed": self.options.seed,
            "images_sha256": images_hash,
            "likelihood": task.options.likelihood,
            "variance": task.options.variance if task.options.likelihood == "gaussian" else None,
            "units": "nats per image on the [-1, 1] scale; bits_per_dim on the 8-bit scale",
            "generator": getattr(context, "generator_kind", None),
            **extra,
        }


class ELBOMetric(_VAEMetric):
    name = "elbo"
    options: ELBO

    def value_keys(self) -> list[str]:
        return ["elbo", "reconstruction", "kl", "bits_per_dim"]

    def evaluate(self, context: Any) -> dict[str, Any]:
        task, generators = self._vae(context)
        sums: dict[str, list[float]] = {"elbo": [], "reconstruction": [], "kl": []}
        digest = hashlib.sha256()
        dims = 0
        for images, eps in self._batches(context, self.options.samples):
            dims = images[0].numel()
            digest.update(images.float().cpu().numpy().tobytes())
            terms = task.elbo_terms(generators, images, eps)
            for key, values in sums.items():
                values.extend(terms[key].tolist())
        count = len(sums["elbo"])
        means = {key: math.fsum(values) / count for key, values in sums.items()}
        bpd = bits_per_dim(torch.tensor(-means["elbo"]), dims, task.options.likelihood)
        return {
            **means,
            "bits_per_dim": float(bpd),
            "protocol": self._protocol(context, digest.hexdigest(), samples=self.options.samples),
        }


class IWAEMetric(_VAEMetric):
    name = "iwae"
    options: IWAE

    def value_keys(self) -> list[str]:
        return ["log_px", "bits_per_dim"]

    def evaluate(self, context: Any) -> dict[str, Any]:
        task, generators = self._vae(context)
        values: list[float] = []
        digest = hashlib.sha256()
        dims = 0
        for images, eps in self._batches(context, self.options.k):
            dims = images[0].numel()
            digest.update(images.float().cpu().numpy().tobytes())
            values.extend(task.iwae(generators, images, eps).tolist())
        log_px = math.fsum(values) / len(values)
        bpd = bits_per_dim(torch.tensor(-log_px), dims, task.options.likelihood)
        return {
            "log_px": log_px,
            "bits_per_dim": float(bpd),
            "protocol": self._protocol(context, digest.hexdigest(), k=self.options.k),
        }


def _dataset(options: ELBO | IWAE, context: Any) -> Any:
    """The ``data`` dataset, resolved in the run's registry (the process-wide one for a metric
    built outside a run)."""
    if options.data is None:
        return None
    if getattr(context, "registry", None) is None:
        context = gancore.BuildContext(data_shape=(), registry=gancore.get_registry())
    return context.resolve("dataset", options.data, key="data")


def build_elbo(options: ELBO, context: Any) -> ELBOMetric:
    return ELBOMetric(options, _dataset(options, context))


def build_iwae(options: IWAE, context: Any) -> IWAEMetric:
    return IWAEMetric(options, _dataset(options, context))
