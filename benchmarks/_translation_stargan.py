"""Multi-domain translation on synthetic digits: one StarGAN vs CycleGANs per domain pair.

    python benchmarks/_translation_stargan.py [--quick] [--out benchmarks/results/translation-stargan.json]

Also called by ``benchmarks/translation.py`` through :func:`add_arguments` and :func:`run`.

Data: ``digits-domains`` at 16x16 with the domains of ``examples/stargan-digits.toml`` (original,
inverted and thick strokes): every training digit in one domain (unpaired), every held-out digit
(297) in every domain, so each of the ``k (k - 1)`` translations has a ground truth.

- ``stargan``: one model, ``examples/stargan-digits.toml`` as written (1,000 iterations of 5
  critic steps and one generator step, batch 16);
- ``cyclegan``: ``examples/cyclegan-digits.toml``'s networks and recipe, one run per domain pair on
  that pair's training digits (``unpaired`` over ``digits-domains`` with ``only``): its two
  generators cover both directions, so ``k (k - 1) / 2`` runs cover every translation;
- ``identity``: the input unchanged.

Measured on the held-out digits: the L1 error to the ground truth per (source, target) pair, in
the ``[-1, 1]`` units of the images (the matrix and the mean over the off-diagonal pairs); the
domain accuracy of the translations, by a small CNN trained here on the training digits'
domains (deterministic; its accuracy on held-out real images is reported); parameters and training
wall time of each approach. One thread. Writes the JSON to ``--out`` and a picture (per row a
held-out digit, StarGAN's translation into each domain, then the ground truth) to ``--picture``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _machine import machine
from gan_cyclegan.stargan import held_out_errors, translate
from gan_cyclegan.stargan_data import DigitsDomains
from torch import nn

import gancore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
STARGAN = EXAMPLES / "stargan-digits.toml"
CYCLEGAN = EXAMPLES / "cyclegan-digits.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    parser.add_argument("--quick", action="store_true", help="a few iterations, a smoke test")
    parser.add_argument("--seed", type=int, default=0, help="run seed of every model")
    parser.add_argument(
        "--stargan-steps", type=int, default=None, help="StarGAN iterations (the example's)"
    )
    parser.add_argument(
        "--cyclegan-steps", type=int, default=500, help="iterations of each CycleGAN pair run"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/translation-stargan.json"
    )
    parser.add_argument("--picture", type=Path, default=ROOT / "docs/images/stargan-digits.png")
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here")


def _data(**options: Any) -> Any:
    """A dataset built as a run builds it (from the run's registry)."""
    document = {"data": options}
    return gancore.parse_config(document, gancore.get_registry()).data.build(None)


def _parameters(modules: Any) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


# -------------------------------------------------------------------------------------------------
# The domain classifier
# -------------------------------------------------------------------------------------------------


def _classifier(channels: int, domains: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, domains),
    )


def train_classifier(train: DigitsDomains, steps: int, seed: int) -> nn.Module:
    """A CNN that tells the domain of a 16x16 digit, trained with Adam on the training digits in a
    seeded order (deterministic on one thread)."""
    torch.manual_seed(seed)
    model = _classifier(train.channels, len(train.classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        index = torch.randint(len(train), (64,), generator=order)
        loss = F.cross_entropy(model(train.images[index]), train.labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


Translator = Callable[[torch.Tensor, int, int], "torch.Tensor | None"]


@torch.no_grad()
def accuracy_matrix(
    classifier: nn.Module, translator: Translator | None, held: DigitsDomains
) -> torch.Tensor:
    """``A[s, t]``: the fraction of held-out digits of domain ``s`` translated to ``t`` that the
    classifier assigns to ``t``; ``translator(x, s, t)`` gives the translations (None: the input
    unchanged; a translator returning None: no such translation, NaN)."""
    truth = held.ground_truth
    k = truth.shape[0]
    result = torch.zeros(k, k, dtype=torch.float64)
    for s, t in itertools.product(range(k), range(k)):
        images = truth[s] if translator is None else translator(truth[s], s, t)
        if images is None:
            result[s, t] = float("nan")
            continue
        result[s, t] = float((classifier(images).argmax(1) == t).double().mean())
    return result


def _off_diagonal_mean(matrix: torch.Tensor) -> float:
    off = ~torch.eye(matrix.shape[0], dtype=torch.bool)
    return float(matrix[off].mean())


# -------------------------------------------------------------------------------------------------
# The models
# -------------------------------------------------------------------------------------------------


def train_stargan(steps: int | None, seed: int, work: Path) -> dict[str, Any]:
    """Train the StarGAN example; its generator and figures."""
    overrides = [f"run.seed={seed}", "training.sample_every=0", "training.checkpoint_every=0"]
    if steps is not None:
        overrides += [f"run.steps={steps}"]
        overrides += [f"optimizers.{p}.decay_start={steps // 2}" for p in ("generator", "critic")]
    config = gancore.load_config(STARGAN, overrides)
    started = time.perf_counter()
    result = gancore.train(config, work / "stargan", progress=False)
    wall = time.perf_counter() - started
    generator = result.generators["generator"].eval()
    critic = result.critics["critic"]
    return {
        "generator": generator,
        "steps": config.run.steps,
        "critic_steps": config.training.critic_steps,
        "batch_size": config.training.batch_size,
        "wall_s": wall,
        "parameters": _parameters([generator, critic]),
        "parameters_generator": _parameters([generator]),
    }


def train_cyclegans(domains: tuple[str, ...], steps: int, seed: int, work: Path) -> dict[str, Any]:
    """One CycleGAN per domain pair, with the CycleGAN example's networks and recipe on that
    pair's training digits; ``translators[(s, t)]`` is the generator for ``s -> t``."""
    document = tomllib.loads(CYCLEGAN.read_text())
    translators: dict[tuple[int, int], nn.Module] = {}
    walls: list[float] = []
    parameters = 0
    for s, t in itertools.combinations(range(len(domains)), 2):
        side = {"name": "digits-domains", "domains": list(domains), "resolution": 16}
        document["data"] = {
            "name": "unpaired",
            "a": {**side, "only": domains[s]},
            "b": {**side, "only": domains[t]},
            "resolution": 16,
            "flip": False,
        }
        document["task"]["identity_weight"] = 0.5  # same channels: the paper's identity loss
        document["run"] = {**document["run"], "seed": seed, "steps": steps}
        document["training"] = {
            **document["training"],
            "sample_every": 0,
            "checkpoint_every": 0,
        }
        for player in ("generator", "critic"):
            document["optimizers"][player]["decay_start"] = steps // 2
        config = gancore.parse_config(document, gancore.get_registry())
        started = time.perf_counter()
        result = gancore.train(config, work / f"cyclegan-{s}{t}", progress=False)
        walls.append(time.perf_counter() - started)
        translators[(s, t)] = result.generators["a_to_b"].eval()
        translators[(t, s)] = result.generators["b_to_a"].eval()
        parameters += _parameters([*result.generators.values(), *result.critics.values()])
    return {
        "translators": translators,
        "runs": len(walls),
        "steps": steps,
        "wall_s": sum(walls),
        "wall_s_per_run": walls,
        "parameters": parameters,
    }


@torch.no_grad()
def cyclegan_errors(translators: dict[tuple[int, int], nn.Module], held: DigitsDomains) -> Any:
    truth = held.ground_truth
    k = truth.shape[0]
    errors = torch.full((k, k), float("nan"), dtype=torch.float64)
    for (s, t), generator in translators.items():
        errors[s, t] = float((generator(truth[s]) - truth[t]).abs().mean())
    return errors


def mean_image_errors(train: DigitsDomains, held: DigitsDomains) -> torch.Tensor:
    """``E[s, t]`` of the translation that ignores its input and outputs the mean training image
    of domain ``t`` (the same for every source ``s``)."""
    truth = held.ground_truth
    k = truth.shape[0]
    means = [train.images[train.labels == t].double().mean(0) for t in range(k)]
    row = torch.tensor([float((means[t] - truth[t].double()).abs().mean()) for t in range(k)])
    return row.expand(k, k).to(torch.float64).clone()


def _matrix(matrix: torch.Tensor) -> list[list[float | None]]:
    return [[None if v != v else round(float(v), 4) for v in row] for row in matrix.tolist()]


# -------------------------------------------------------------------------------------------------
# The benchmark
# -------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train both approaches and the classifier, measure, draw the picture, write the results to
    ``args.out`` and print the table; returns the results."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="stargan-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    example = gancore.load_config(STARGAN)
    domains = tuple(example.data.options.domains)
    data = {"name": "digits-domains", "domains": list(domains), "resolution": 16}
    train, held = _data(**data), _data(**data, split="held-out")
    quick = args.quick
    classifier = train_classifier(train, 40 if quick else 400, args.seed)
    classifier_accuracy = accuracy_matrix(classifier, None, held).diagonal().mean()

    star = train_stargan(20 if quick else args.stargan_steps, args.seed, work)
    generator = star.pop("generator")
    k = len(domains)

    def star_translate(x: torch.Tensor, s: int, t: int) -> torch.Tensor:
        del s
        return translate(generator, x, F.one_hot(torch.full((len(x),), t), k).float())

    cycle = train_cyclegans(domains, 10 if quick else args.cyclegan_steps, args.seed, work)
    translators = cycle.pop("translators")

    def cycle_translate(x: torch.Tensor, s: int, t: int) -> torch.Tensor | None:
        module = translators.get((s, t))  # none for s == t
        return None if module is None else module(x)

    errors = {
        "stargan": held_out_errors(generator, held),
        "cyclegan": cyclegan_errors(translators, held),
        "identity": held_out_errors(lambda inputs: inputs[:, : train.channels], held),
        "mean_image": mean_image_errors(train, held),
    }
    accuracy = {
        "stargan": accuracy_matrix(classifier, star_translate, held),
        "cyclegan": accuracy_matrix(classifier, cycle_translate, held),
        "identity": accuracy_matrix(classifier, None, held),
    }
    results: dict[str, Any] = {
        "benchmark": "translation-stargan",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(1, "gan-cyclegan"),
        "data": {
            "dataset": "digits-domains",
            "domains": list(domains),
            "resolution": 16,
            "train": len(train),
            "held_out_digits": int(held.ground_truth.shape[1]),
        },
        "classifier": {
            "steps": 40 if quick else 400,
            "held_out_accuracy": float(classifier_accuracy),
        },
        "models": {
            "stargan": {**star, "models": 1},
            "cyclegan": {**cycle, "models": cycle["runs"]},
        },
        "l1": {
            name: {"mean_off_diagonal": _off_diagonal_mean(m), "matrix": _matrix(m)}
            for name, m in errors.items()
        },
        "domain_accuracy": {
            name: {"mean_off_diagonal": _off_diagonal_mean(m), "matrix": _matrix(m)}
            for name, m in accuracy.items()
        },
    }
    results["picture"] = str(draw(generator, held, args.picture))
    results["wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown_table(results))
    print(f"\nwrote {args.out} and {results['picture']} ({results['wall_s'] / 60:.1f} min)")
    return results


@torch.no_grad()
def draw(generator: nn.Module, held: DigitsDomains, path: Path) -> Path:
    """Per row a held-out digit (2 of each source domain), StarGAN's translation into each
    domain, then the ground truth in each domain."""
    truth = held.ground_truth
    k = truth.shape[0]
    rows = []
    for s in range(k):
        x = truth[s, 2 * s : 2 * s + 2]
        outputs = [
            translate(generator, x, F.one_hot(torch.full((2,), t), k).float()) for t in range(k)
        ]
        rows.append(torch.stack([x, *outputs, *truth[:, 2 * s : 2 * s + 2]], dim=1))
    images = torch.cat(rows).flatten(0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    gancore.save_grid(images, path, columns=1 + 2 * k)
    return path


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown_table(results: dict[str, Any]) -> str:
    """The Markdown summary."""
    lines = [
        "| approach | models | parameters | training | held-out L1 (mean of pairs) | "
        "domain accuracy |",
        "|---|---|---|---|---|---|",
    ]
    models = results["models"]
    accuracy = {n: v["mean_off_diagonal"] for n, v in results["domain_accuracy"].items()}
    for name in ("identity", "mean_image", "cyclegan", "stargan"):
        info = models.get(name)
        params = "-" if info is None else f"{info['parameters']:,}"
        train = "-" if info is None else f"{info['wall_s'] / 60:.1f} min"
        count = "-" if info is None else str(info["models"])
        lines.append(
            f"| {name} | {count} | {params} | {train} | "
            f"{results['l1'][name]['mean_off_diagonal']:.3f} | "
            f"{_cell(accuracy.get(name))} |"
        )
    real = results["classifier"]["held_out_accuracy"]
    lines.append(f"\nclassifier accuracy on held-out real images: {real:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
