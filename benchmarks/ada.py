"""Limited data with and without ADA, augmentation throughput, and a leak check (gan-ada).

    python benchmarks/ada.py [--quick] [--subsets 100 300] [--steps 1500] [--jobs 2]
        [--out benchmarks/results/ada.json]

Training. The same DCGAN (16x16 digits, 32 feature maps, non-saturating loss, Adam 2e-4, betas
(0.5, 0.999), batch 32, EMA generator with a 5k-image half-life) trains on the first ``--subsets``
digits of a seeded shuffle of scikit-learn's 1,797 (``digits`` with ``limit``), once without
augmentation and once with ``ada`` ('bgc', target 0.6, interval 4), for the same number of steps.
The ADA paper moves p by at most 1 per 500k images over runs of millions of images; these runs
see ``steps * 32`` images (48k by default), so the speed is scaled to 10k images per unit of p.

Scores (EMA generator, 2,000 samples, seed 1000) against the full set of 1,797 digits: the
Fréchet distance and KID in the feature space of gancore's bundled ``digits-classifier`` (metrics
``fid`` and ``kid`` with that extractor: ``fd-digits``, ``kd-digits``; not comparable to
Inception FIDs). As a floor, the same distances for the training subset itself (a generator that
reproduced its training digits exactly).

Leak check. A small CNN learns, on augmented real digits (all 1,797, 80% for training), which of
the 8 rotations/flips of the square (the dihedral group D4) was applied. The share of generated
digits it classifies as rotated or flipped is the leak measure, next to the same share on the
held-out 20% of real, untransformed digits (its false-positive rate: 0, 1 and 8 look alike under
some of these transforms).

Throughput. Images per second of ``ada`` ('bgc' and 'bgcfnc' at p = 1, every op firing) and
``diffaugment``, forward and forward + backward, on batches of 64 RGB images of 32x32 and 64x64:
the median over repeats after warm-up, one thread.

Each training run is its own process (``--jobs`` at a time, one thread each). Results, the
command line, the machine and each run's CPU time go to ``--out`` as JSON; the p trajectories to
``docs/images/ada_p.png`` and sample grids to ``docs/images/ada_samples.png`` (the pictures
docs/benchmarks.md shows).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _machine import machine

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "images"  # shown by the docs

RESULTS = Path(__file__).resolve().parent / "results"
RESOLUTION = 16
BATCH = 32
NUM_GENERATED = 2000
METRIC_SEED = 1000
AUGMENTERS = ("none", "ada")


# -------------------------------------------------------------------------------------------------
# Training runs (worker processes)
# -------------------------------------------------------------------------------------------------


def run_document(subset: int, augmenter: str, args: argparse.Namespace) -> dict[str, Any]:
    """The run's config as a TOML-shaped dict."""
    optimizer = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
    document: dict[str, Any] = {
        "run": {"name": f"{augmenter}-{subset}", "seed": args.seed, "steps": args.steps},
        "data": {"name": "digits", "resolution": RESOLUTION, "limit": subset, "seed": 0},
        "generator": {"name": "dcgan", "latent_dim": 64, "channels": 32},
        "critic": {"name": "dcgan", "channels": 32},
        "loss": {"name": "non-saturating"},
        "optimizers": {"generator": dict(optimizer), "critic": dict(optimizer)},
        "training": {
            "batch_size": BATCH,
            "ema_half_life_images": 5000,
            "ema_rampup": 0.05,
            "log_every": max(1, args.steps // 60),
            "sample_every": 0,
            "metrics_every": 0,
            "checkpoint_every": 0,
        },
    }
    if augmenter == "ada":
        document["augmenter"] = {
            "name": "ada",
            "pipeline": "bgc",
            "target": 0.6,
            "interval": 4,
            "speed_images": args.speed_images,
        }
    return document


class _Context:
    """A :class:`gancore.protocols.MetricContext` that scores ``samples`` (a generator function
    or a fixed tensor, cycled) against every digit of ``dataset``."""

    def __init__(self, dataset: Any, sample: Any) -> None:
        import torch

        self.dataset = dataset
        self.device = torch.device("cpu")
        self._sample = sample

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[Any]:
        import torch

        gen = torch.Generator().manual_seed(seed)
        for start in range(0, num, batch_size):
            n = min(batch_size, num - start)
            yield self._sample(n, gen)

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[Any]:
        import torch

        order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(seed))
        order = order.repeat(math.ceil(num / len(order)))[:num]
        for start in range(0, num, batch_size):
            yield self.dataset.get_batch(order[start : start + batch_size].tolist())["x"]


def score(dataset: Any, sample: Any) -> dict[str, float]:
    """fd-digits and kd-digits (± std) of ``sample`` against all of ``dataset``."""
    from gancore.metrics.components import FIDMetric, KIDMetric

    common = {
        "extractor": "digits-classifier",
        "num_generated": NUM_GENERATED,
        "num_real": len(dataset),
        "seed": METRIC_SEED,
        "cache_reference": False,
    }
    context = _Context(dataset, sample)
    fid = FIDMetric(**common).evaluate(context)  # type: ignore[arg-type]
    kid = KIDMetric(**common).evaluate(context)  # type: ignore[arg-type]
    return {
        "fd_digits": float(fid["fd-digits"]),
        "kd_digits": float(kid["kd-digits"]),
        "kd_digits_std": float(kid["kd-digits_std"]),
    }


def full_digits() -> Any:
    import attrs

    import gancore

    spec = gancore.get_registry().get("dataset", "digits")
    return spec.build(attrs.evolve(spec.defaults(), resolution=RESOLUTION), None)


def run_case(subset: int, augmenter: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train one case in this (worker) process; its scores, p trajectory and samples."""
    import torch

    torch.set_num_threads(1)
    import gancore

    document = run_document(subset, augmenter, args)
    config = gancore.parse_config(document, gancore.get_registry(), source=f"{augmenter}/{subset}")
    started, cpu_started = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        result = gancore.train(config, Path(tmp) / "run", progress=False)
        records = [
            json.loads(line)
            for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
        ]
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    generator = result.ema["generator"].eval()

    @torch.no_grad()
    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        return generator(torch.randn(n, 64, generator=gen))

    scores = score(full_digits(), sample)
    samples = sample(NUM_GENERATED, torch.Generator().manual_seed(METRIC_SEED + 1))
    trajectory = [
        {
            "images_seen": r["images_seen"],
            "p": r.get("augment/p"),
            "r_t": r.get("augment/r_t"),
            "real_score": r.get("scores/real"),
            "fake_score": r.get("scores/fake"),
        }
        for r in records
        if r.get("event") == "train"
    ]
    return {
        "subset": subset,
        "augmenter": augmenter,
        "steps": result.step,
        "images_seen": result.images_seen,
        **scores,
        "final_p": trajectory[-1]["p"] if trajectory else None,
        "train_seconds": round(seconds, 1),  # wall clock: depends on the machine's other load
        "cpu_seconds": round(cpu_seconds, 1),  # CPU time of the (one-thread) process
        "trajectory": trajectory,
        "samples": samples.numpy().tolist(),
        "config": document,
    }


def subset_floor(subset: int) -> dict[str, float]:
    """The distances of the training subset itself, sampled uniformly with replacement."""
    import attrs
    import torch

    import gancore

    spec = gancore.get_registry().get("dataset", "digits")
    data = spec.build(
        attrs.evolve(spec.defaults(), resolution=RESOLUTION, limit=subset, seed=0), None
    )
    images = data.get_batch(list(range(len(data))))["x"]

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        return images[torch.randint(len(images), (n,), generator=gen)]

    return score(full_digits(), sample)


def _quiet_worker() -> None:
    # Workers print only errors: the parent prints one line per finished case.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the worker)


# -------------------------------------------------------------------------------------------------
# Leak check: which of the 8 symmetries of the square was applied?
# -------------------------------------------------------------------------------------------------


def dihedral(x: Any, k: int) -> Any:
    """Element ``k`` of D4 on images ``[N, C, H, W]``: ``k % 4`` quarter turns, mirrored if
    ``k >= 4``."""
    import torch

    y = torch.rot90(x, k % 4, dims=(-1, -2))
    return y.flip(-1) if k >= 4 else y


def train_leak_classifier(epochs: int, seed: int = 0) -> tuple[Any, dict[str, float]]:
    """A small CNN that predicts the D4 element applied to a real digit; its held-out accuracy
    and its false-positive rate (untransformed held-out digits called transformed)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    data = full_digits()
    images = data.get_batch(list(range(len(data))))["x"]
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(images))
    train, held = images[order[:cut]], images[order[cut:]]
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 8),
    )
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xs = torch.cat([dihedral(train, k) for k in range(8)])
    ys = torch.arange(8).repeat_interleave(len(train))
    for _ in range(epochs):
        perm = torch.randperm(len(xs))
        for start in range(0, len(xs), 128):
            idx = perm[start : start + 128]
            loss = nn.functional.cross_entropy(net(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        held_x = torch.cat([dihedral(held, k) for k in range(8)])
        held_y = torch.arange(8).repeat_interleave(len(held))
        accuracy = (net(held_x).argmax(1) == held_y).double().mean().item()
        false_positive = (net(held).argmax(1) != 0).double().mean().item()
    return net, {
        "held_out_accuracy": accuracy,
        "real_called_transformed": false_positive,
        "train_images": len(train),
        "held_out_images": len(held),
        "epochs": epochs,
    }


def leak_share(net: Any, samples: Any) -> dict[str, float]:
    """Share of samples classified as transformed, and per kind (rotated / flipped)."""
    import torch

    with torch.no_grad():
        pred = net(torch.as_tensor(samples, dtype=torch.float32)).argmax(1)
    return {
        "leak_transformed": (pred != 0).double().mean().item(),
        "leak_rotated": ((pred % 4 != 0) & (pred < 4)).double().mean().item(),
        "leak_flipped": (pred >= 4).double().mean().item(),
    }


# -------------------------------------------------------------------------------------------------
# Throughput
# -------------------------------------------------------------------------------------------------


def throughput(repeats: int, warmup: int) -> list[dict[str, Any]]:
    """Images/s of the augmenters on [64, 3, S, S] batches, S = 32 and 64 (one thread)."""
    import torch
    from gan_ada.ada import AdaOptions, AdaptiveAugment
    from gan_ada.diffaugment import DiffAugment, DiffAugmentOptions

    torch.set_num_threads(1)
    rows = []
    batch = 64
    for size in (32, 64):
        shape = (3, size, size)
        cases = {
            "ada bgc, p=1": AdaptiveAugment(AdaOptions(pipeline="bgc", p=1.0), shape),
            "ada bgcfnc, p=1": AdaptiveAugment(AdaOptions(pipeline="bgcfnc", p=1.0), shape),
            "ada bgc, p=0.3": AdaptiveAugment(AdaOptions(pipeline="bgc", p=0.3), shape),
            "diffaugment": DiffAugment(DiffAugmentOptions(), shape),
        }
        x = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
        for name, augment in cases.items():
            for backward in (False, True):
                times = []
                for i in range(warmup + repeats):
                    inputs = x.clone().requires_grad_(backward)
                    start = time.perf_counter()
                    out = augment(inputs)
                    if backward:
                        out.square().sum().backward()
                    if i >= warmup:
                        times.append(time.perf_counter() - start)
                median = statistics.median(times)
                rows.append(
                    {
                        "augmenter": name,
                        "size": size,
                        "batch": batch,
                        "backward": backward,
                        "median_seconds": median,
                        "images_per_s": batch / median,
                        "repeats": repeats,
                        "warmup": warmup,
                    }
                )
    return rows


# -------------------------------------------------------------------------------------------------
# Report
# -------------------------------------------------------------------------------------------------


def tables(report: dict[str, Any]) -> str:
    lines = [
        "| training digits | augmenter | steps | final p | fd-digits | kd-digits | "
        "transformed | rotated | flipped | CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["runs"]:
        p = "-" if row["final_p"] is None else f"{row['final_p']:.2f}"
        lines.append(
            f"| {row['subset']} | {row['augmenter']} | {row['steps']} | {p} | "
            f"{row['fd_digits']:.2f} | {row['kd_digits']:.4f} ± "
            f"{row['kd_digits_std']:.4f} | {100 * row['leak_transformed']:.1f}% | "
            f"{100 * row['leak_rotated']:.1f}% | {100 * row['leak_flipped']:.1f}% | "
            f"{row['cpu_seconds']:.0f} |"
        )
    for subset, floor in report["subset_floor"].items():
        lines.append(
            f"| {subset} | (the training digits themselves) | - | - | {floor['fd_digits']:.2f} | "
            f"{floor['kd_digits']:.4f} ± {floor['kd_digits_std']:.4f} | - | - | - | - |"
        )
    leak = report["leak_classifier"]
    lines.append(
        f"| held-out real | - | - | - | - | - | {100 * leak['real_called_transformed']:.1f}% | "
        "- | - | - |"
    )
    lines += [
        "",
        "| augmenter | size | forward img/s | forward + backward img/s |",
        "|---|---|---|---|",
    ]
    rows = report["throughput"]
    for name in dict.fromkeys(r["augmenter"] for r in rows):
        for size in (32, 64):
            fwd = next(
                r
                for r in rows
                if r["augmenter"] == name and r["size"] == size and not r["backward"]
            )
            bwd = next(
                r for r in rows if r["augmenter"] == name and r["size"] == size and r["backward"]
            )
            lines.append(
                f"| {name} | {size} | {fwd['images_per_s']:.0f} | {bwd['images_per_s']:.0f} |"
            )
    return "\n".join(lines)


def figures(report: dict[str, Any], out_dir: Path) -> list[str]:
    """p (and r_t) against images seen; sample grids of every run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    ada_runs = [r for r in report["runs"] if r["augmenter"] == "ada"]
    if ada_runs:
        fig, (ax_p, ax_r) = plt.subplots(1, 2, figsize=(10, 3.6))
        for row in ada_runs:
            traj = [t for t in row["trajectory"] if t["p"] is not None]
            seen = [t["images_seen"] / 1000 for t in traj]
            ax_p.plot(seen, [t["p"] for t in traj], label=f"{row['subset']} digits")
            with_r = [t for t in traj if t["r_t"] is not None]
            ax_r.plot(
                [t["images_seen"] / 1000 for t in with_r],
                [t["r_t"] for t in with_r],
                label=f"{row['subset']} digits",
            )
        ax_r.axhline(0.6, color="gray", linestyle="--", linewidth=1, label="target 0.6")
        ax_p.set(
            xlabel="real images seen (thousands)", ylabel="p", title="ADA strength p", ylim=(0, 1)
        )
        ax_r.set(
            xlabel="real images seen (thousands)", ylabel="r_t", title="r_t = E[sign(D(real))]"
        )
        ax_p.legend()
        ax_r.legend()
        fig.tight_layout()
        path = FIGURES / "ada_p.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    runs = report["runs"]
    if runs:
        fig, axes = plt.subplots(1, len(runs), figsize=(3 * len(runs), 3.8))
        size = RESOLUTION + 2  # each digit with a 1-pixel gray frame
        for ax, row in zip(np.atleast_1d(axes), runs, strict=True):
            imgs = np.asarray(row["samples"][:64], dtype=np.float32)[:, 0]
            framed = np.pad(imgs, ((0, 0), (1, 1), (1, 1)), constant_values=-0.5)
            grid = framed.reshape(8, 8, size, size).transpose(0, 2, 1, 3)
            ax.imshow(grid.reshape(8 * size, 8 * size), cmap="gray", vmin=-1, vmax=1)
            ax.set_title(
                f"{row['subset']} digits, {row['augmenter']}\nfd-digits {row['fd_digits']:.1f}"
            )
            ax.axis("off")
        fig.tight_layout()
        path = FIGURES / "ada_samples.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subsets", nargs="+", type=int, default=[100, 300])
    parser.add_argument("--augmenters", nargs="+", default=list(AUGMENTERS), choices=AUGMENTERS)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--speed-images", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="training runs at once")
    parser.add_argument("--leak-epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7, help="throughput repeats")
    parser.add_argument("--quick", action="store_true", help="60 steps, 1 leak epoch, 3 repeats")
    parser.add_argument("--out", type=Path, default=RESULTS / "ada.json")
    parser.add_argument(
        "--replot", action="store_true", help="only redraw the figures from --out and print tables"
    )
    args = parser.parse_args(argv)
    if args.replot:
        report = json.loads(args.out.read_text())
        figures(report, args.out.parent)
        print(tables(report))
        return 0
    if args.quick:
        args.steps, args.leak_epochs, args.repeats = 60, 1, 3

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    load_before = list(os.getloadavg())
    # Throughput first, alone: the training processes would compete with it.
    print("throughput ...", file=sys.stderr, flush=True)
    speed = throughput(args.repeats, warmup=2)
    cases = [(s, a) for s in args.subsets for a in args.augmenters]
    print(f"{len(cases)} training runs, {args.jobs} at a time", file=sys.stderr, flush=True)
    results: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        args.jobs, mp_context=context, initializer=_quiet_worker
    ) as pool:
        futures = {pool.submit(run_case, s, a, args): (s, a) for s, a in cases}
        # Meanwhile, in this process: the leak classifier and the subsets' floors.
        print("leak classifier ...", file=sys.stderr, flush=True)
        net, leak_info = train_leak_classifier(args.leak_epochs)
        print(
            f"leak classifier: held-out accuracy {leak_info['held_out_accuracy']:.3f}, real "
            f"called transformed {leak_info['real_called_transformed']:.3f}",
            file=sys.stderr,
            flush=True,
        )
        floors = {str(s): subset_floor(s) for s in args.subsets}
        for future in concurrent.futures.as_completed(futures):
            row = future.result()
            row.update(leak_share(net, row["samples"]))
            results.append(row)
            print(
                f"{row['subset']:>4} digits, {row['augmenter']:>4}: fd-digits "
                f"{row['fd_digits']:.2f}, kd-digits {row['kd_digits']:.4f}, p "
                f"{row['final_p']}, transformed {row['leak_transformed']:.3f}, "
                f"{row['cpu_seconds']:.0f} CPU s ({row['train_seconds']:.0f} s wall)",
                file=sys.stderr,
                flush=True,
            )
    results.sort(key=lambda r: (r["subset"], AUGMENTERS.index(r["augmenter"])))
    report: dict[str, Any] = {
        "command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
        "machine": machine(1, "gan-ada"),
        "load_average_at_start": load_before,
        "total_seconds": None,
        "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"
        },
        "protocol": {
            "data": f"digits {RESOLUTION}x{RESOLUTION}, the first N of a shuffle seeded 0",
            "scores": f"{NUM_GENERATED} EMA samples (seed {METRIC_SEED}) against all 1,797 digits",
            "extractor": "digits-classifier (bundled with gancore)",
            "kid": "100 subsets of 1000",
            "leak": "share of samples a D4 classifier calls rotated or flipped",
        },
        "leak_classifier": leak_info,
        "subset_floor": floors,
        "throughput": speed,
        "runs": results,
    }
    out_dir = args.out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    report["figures"] = figures(report, out_dir)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    for row in results:
        row["samples"] = row["samples"][:64]  # keep the JSON small: the grid's samples only
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(tables(report))
    print(f"\nwritten to {args.out} in {report['total_seconds']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
