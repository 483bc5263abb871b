"""Limited data with and without ADA, transfer with [init], a leak check and augmentation cost
(gan-ada; issue 28).

    python benchmarks/ada.py [--subsets 100 300] [--augmenters none ada fixed diffaugment]
        [--domain digits|skimage]
        [--seeds 0 1 2] [--steps 4000] [--eval-every 400] [--critic-norm batch] [--transfer]
        [--throughput] [--jobs 2] [--keep] [--out benchmarks/results/ada.json]
    python benchmarks/ada.py --replot [--merge OTHER.json ...]   # tables and pictures from --out

Limited data. The same DCGAN (16x16 digits, 32 feature maps, non-saturating loss, Adam 2e-4,
betas (0.5, 0.999), batch 32, EMA generator with a 5k-image half-life) trains on the first N
digits of a shuffle seeded 0 of scikit-learn's 1,797 (``digits`` with ``limit``), for the same
number of steps with each augmenter: ``none``; ``ada`` ('bgc', target 0.6, interval 4);
``fixed`` (the same pipeline at a fixed p: the mean final p of this N's ADA runs, so those run
first); ``diffaugment`` (colour, translation, cutout on every image); ``bcr`` (no augmented
image in the adversarial loss; gan-ada's ``bcr`` regularizer, the paper's weights 10 and 10 and
its transform, translation by up to 1/8 of the size, plus a horizontal flip for the photo patches
but not for the digits, whose mirror images are not digits); ``fixed-0.9`` (p = 0.9, for the leak
check). The ADA paper moves p by at most 1 per 500k images over runs of millions of
images; these runs see ``steps * 32`` images, so the speed is scaled to 10k images per unit of p.

Every ``--eval-every`` steps the run writes a checkpoint; afterwards, for each one, this script
scores the EMA generator (2,000 samples, seed 1000) against all 1,797 digits: the Fréchet distance
in the feature space of gancore's bundled ``digits-classifier`` (``fd-digits``, not comparable to
Inception FIDs), and reads the critic (unaugmented inputs): its mean score on the N training
digits, on the 1,797 - N held-out digits (``rest``) and on 2,000 generated ones, and r_t = E[sign
D(x)] on the training and on the held-out digits. The validation gap is mean D(train) - mean
D(held-out): it opens when the critic memorises its training set (the paper's Fig. 1b). Best FD
is the lowest of these points, final FD the last; both as mean and standard error over seeds.
ADA's own p and r_t (on augmented reals, as its controller sees them) come from metrics.jsonl.

Transfer (the paper's Sec. 4). A base run trains on all 902 digits 0-4 without augmentation;
fine-tuning runs start from it with gancore's ``[init]`` (generator, critic and EMA) on 100
digits of 5-9 and are scored against all 898 digits 5-9: without augmentation, with ADA (speed
scaled as above and 5x faster, as the paper's 100k against 500k: 2k images per unit of p), with
Freeze-D (the critic's first block frozen), with both; and the same 100 digits from scratch
without and with ADA.

``--critic-norm none`` (or 'layer', 'instance') gives the limited-data runs a critic without batch
norm; they are their own experiment (``limited-none``) beside the batch-norm runs (``limited``).

``--domain skimage`` trains the limited-data runs on a second domain (experiment ``skimage``): 32x32
RGB patches of scikit-image's bundled photos (gan-inpaint's ``skimage-patches``: eight photos at
half size, stride 16, the train split: 1,210 patches; the first N of a shuffle seeded 0, the rest
held out), the same networks one block deeper, scored with gan-superres's bundled
``sr-features`` extractor (``fd-sr-features``, against all 1,210 patches) and a D4 leak
classifier trained on the patches. Needs gan-inpaint and gan-superres installed.

Leak check. A small CNN learns, on augmented real digits (all 1,797, 80% for training), which of
the 8 rotations/flips of the square (the dihedral group D4) was applied. The share of generated
digits it classifies as rotated or flipped is the leak measure, next to the same share on the
held-out 20% of real, untransformed digits (its false-positive rate, the floor of the measure).

Throughput. Images per second of ``ada`` ('bgc' and 'bgcfnc' at p = 1, every op firing; 'bgc'
at p = 0.3) and ``diffaugment``, forward and forward + backward, on batches of 64 RGB images of
32x32 and 64x64: the median over repeats after warm-up, one thread.

Each training run is its own process (``--jobs`` at a time, one thread each). The JSON at
``--out`` is rewritten after every finished run; ``--keep`` keeps the runs of an earlier file that
this call does not repeat, so several calls fill one file, and ``--replot --merge`` joins the files
of calls made side by side (runs of the same key replaced). Pictures go to ``docs/images/ada_*.png``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import shutil
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
LATENT = 64
NUM_GENERATED = 2000
METRIC_SEED = 1000
AUGMENTERS = ("none", "ada", "fixed", "diffaugment", "bcr", "fixed-0.9")
# The training images of the limited-data runs. Each domain is scored with an extractor that fits
# it: the bundled digits classifier for the digits, gan-superres's bundled ``sr-features`` (trained
# on crops of scikit-image's photos: which photo, how degraded) for the photo patches.
DOMAINS: dict[str, dict[str, Any]] = {
    "digits": {
        "data": {"name": "digits", "resolution": RESOLUTION},
        "extractor": "digits-classifier",
        "fd": "fd-digits",
        "unit": "digits",
        "experiment": "limited",
        "size": RESOLUTION,
        "channels": 1,
    },
    "skimage": {
        # 32x32 patches of scikit-image's photos at half size, half-overlapping: 1,210 in the
        # train split (gan-inpaint's ``skimage-patches``)
        "data": {"name": "skimage-patches", "size": 32, "scale": 0.5, "stride": 16},
        "extractor": "sr-features",
        "fd": "fd-sr-features",
        "unit": "photo patches",
        "experiment": "skimage",
        "size": 32,
        "channels": 3,
    },
}
TRANSFER = ("scratch", "scratch-ada", "init", "init-ada", "init-freeze-d", "init-ada-freeze-d")
BASE_CLASSES = [0, 1, 2, 3, 4]
TARGET_CLASSES = [5, 6, 7, 8, 9]
TRANSFER_SUBSET = 100


# -------------------------------------------------------------------------------------------------
# Run configurations
# -------------------------------------------------------------------------------------------------


def augmenter_table(augmenter: str, p: float | None, speed_images: int) -> dict[str, Any] | None:
    """The ``[augmenter]`` table of one case, or None for no augmentation."""
    ada = {"name": "ada", "pipeline": "bgc", "target": 0.6, "interval": 4}
    if augmenter == "ada":
        return {**ada, "speed_images": speed_images}
    if augmenter in ("fixed", "fixed-0.9"):
        assert p is not None
        return {**ada, "adaptive": False, "p": p}
    if augmenter == "diffaugment":
        return {"name": "diffaugment"}
    return None


def run_document(case: dict[str, Any]) -> dict[str, Any]:
    """The run's config as a TOML-shaped dict (``case``: see :func:`cases`)."""
    optimizer = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
    steps, every = case["steps"], case["eval_every"]
    document: dict[str, Any] = {
        "run": {"name": case_key(case), "seed": case["seed"], "steps": steps},
        "data": data_table(case, held_out=False),
        "generator": {"name": "dcgan", "latent_dim": LATENT, "channels": 32},
        "critic": {"name": "dcgan", "channels": 32},
        "loss": {"name": "non-saturating"},
        "optimizers": {"generator": dict(optimizer), "critic": dict(optimizer)},
        "training": {
            "batch_size": BATCH,
            "ema_half_life_images": 5000,
            "ema_rampup": 0.05,
            "log_every": max(1, min(50, steps // 60)),
            "sample_every": 0,
            "metrics_every": 0,
            "checkpoint_every": every,
            "keep_checkpoints": steps // every + 2,
        },
    }
    if case.get("critic_norm", "batch") != "batch":
        document["critic"]["norm"] = case["critic_norm"]
    table = augmenter_table(case["aug"], case.get("p"), case["speed_images"])
    if table is not None:
        document["augmenter"] = table
    if case.get("freeze_d"):
        document["regularizers"] = [{"name": "freeze-d", "blocks": 1}]
    if case["aug"] == "bcr":  # the paper's T (flip, 1/8 shift) and weights; no flip for digits
        xflip = domain_of(case["experiment"]) != "digits"
        document["regularizers"] = [
            {"name": "bcr", "real": 10.0, "fake": 10.0, "translation": 0.125, "xflip": xflip}
        ]
    if case.get("init"):
        document["init"] = {"from": case["init"], "strict": True}
    return document


def domain_of(experiment: str) -> str:
    """The training images of an experiment: 'skimage' for ``skimage*``, 'digits' otherwise."""
    return "skimage" if experiment.startswith("skimage") else "digits"


def is_limited(experiment: str) -> bool:
    """A limited-data experiment (any domain, any critic norm), not the transfer's."""
    return experiment.startswith(("limited", "skimage"))


def data_table(case: dict[str, Any], held_out: bool) -> dict[str, Any]:
    """The ``[data]`` table of the training images, or (``held_out``) of the images left out."""
    table: dict[str, Any] = dict(DOMAINS[domain_of(case["experiment"])]["data"])
    if case["experiment"] == "base":
        return {**table, "classes": BASE_CLASSES}
    if case["experiment"] == "transfer":
        table["classes"] = TARGET_CLASSES
    table.update(limit=case["subset"], seed=0)
    if held_out:
        table["rest"] = True
    return table


def reference_table(case: dict[str, Any]) -> dict[str, Any]:
    """The ``[data]`` table of the images FD is measured against."""
    table: dict[str, Any] = dict(DOMAINS[domain_of(case["experiment"])]["data"])
    if case["experiment"] == "transfer":
        table["classes"] = TARGET_CLASSES
    if case["experiment"] == "base":
        table["classes"] = BASE_CLASSES
    return table


def case_key(case: dict[str, Any]) -> str:
    return f"{case['experiment']}-{case['subset']}-{case['augmenter']}-s{case['seed']}"


# -------------------------------------------------------------------------------------------------
# Training runs and their scores over time (worker processes)
# -------------------------------------------------------------------------------------------------


def build_dataset(table: dict[str, Any]) -> Any:
    import gancore

    spec = gancore.get_registry().get("dataset", table["name"])
    options = {k: v for k, v in table.items() if k != "name"}
    if "classes" in options:
        options["classes"] = tuple(options["classes"])
    import attrs

    return spec.build(attrs.evolve(spec.defaults(), **options), None)


def full_domain(domain: str) -> Any:
    return build_dataset(dict(DOMAINS[domain]["data"]))


def all_images(dataset: Any) -> Any:
    return dataset.get_batch(list(range(len(dataset))))["x"]


class _Context:
    """A :class:`gancore.protocols.MetricContext` that scores ``sample`` (a function of a count
    and a torch.Generator) against every image of ``dataset``."""

    def __init__(self, dataset: Any, sample: Any) -> None:
        import torch

        self.dataset = dataset
        self.device = torch.device("cpu")
        self._sample = sample

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[Any]:
        import torch

        gen = torch.Generator().manual_seed(seed)
        for start in range(0, num, batch_size):
            yield self._sample(min(batch_size, num - start), gen)

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[Any]:
        import torch

        order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(seed))
        order = order.repeat(math.ceil(num / len(order)))[:num]
        for start in range(0, num, batch_size):
            yield self.dataset.get_batch(order[start : start + batch_size].tolist())["x"]


def fd_domain(domain: str, dataset: Any, sample: Any) -> float:
    """The FD of ``sample`` against all of ``dataset`` with the domain's extractor (fd-digits,
    fd-sr-features)."""
    from gancore.metrics.components import FIDMetric

    metric = FIDMetric(
        extractor=DOMAINS[domain]["extractor"],
        num_generated=NUM_GENERATED,
        num_real=len(dataset),
        seed=METRIC_SEED,
        cache_reference=False,
    )
    return float(metric.evaluate(_Context(dataset, sample))[DOMAINS[domain]["fd"]])


def checkpoint_point(
    step_dir: Path,
    generator: Any,
    critic: Any,
    train: Any,
    held: Any,
    reference: Any,
    domain: str = "digits",
) -> dict[str, Any]:
    """FD of the EMA generator and the critic's scores at one checkpoint."""
    import torch

    import gancore

    weights, saved = gancore.load_checkpoint(step_dir)

    def strip(group: dict[str, Any], player: str) -> dict[str, Any]:
        return {k[len(player) + 1 :]: v for k, v in group.items() if k.startswith(player + ".")}

    generator.load_state_dict(strip(weights["ema"], "generator"))
    critic.load_state_dict(strip(weights["critics"], "critic"))
    generator.eval()
    critic.eval()

    @torch.no_grad()
    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        return generator(torch.randn(n, LATENT, generator=gen))

    with torch.no_grad():
        d_train = critic(train).flatten()
        d_held = critic(held).flatten() if len(held) else torch.full((1,), float("nan"))
        d_fake = critic(sample(NUM_GENERATED, torch.Generator().manual_seed(METRIC_SEED))).flatten()
    return {
        "step": int(saved["iteration"]),
        "images_seen": int(saved["images_seen"]),
        "fd": fd_domain(domain, reference, sample),
        "d_train": d_train.mean().item(),
        "d_held_out": d_held.mean().item(),
        "d_fake": d_fake.mean().item(),
        "gap": d_train.mean().item() - d_held.mean().item(),
        "r_train": d_train.sign().mean().item(),
        "r_held_out": d_held.sign().mean().item() if len(held) else float("nan"),
    }


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Train one case in this (worker) process; its curves and final samples."""
    import torch

    torch.set_num_threads(1)
    import gancore

    document = run_document(case)
    config = gancore.parse_config(document, gancore.get_registry(), source=case_key(case))
    started, cpu_started = time.perf_counter(), time.process_time()
    keep_dir = case.get("keep_dir")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(keep_dir) if keep_dir else Path(tmp) / "run"
        if keep_dir:
            shutil.rmtree(run_dir, ignore_errors=True)  # an earlier call's base run
        result = gancore.train(config, run_dir, progress=False)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        records = [
            json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        ]
        train = all_images(build_dataset(data_table(case, held_out=False)))
        held = (
            all_images(build_dataset(data_table(case, held_out=True)))
            if case["experiment"] != "base"
            else train[:0]
        )
        reference = build_dataset(reference_table(case))
        generator, critic = result.ema["generator"], result.critics["critic"]
        steps = sorted((run_dir / "checkpoints").glob("step-*"))
        domain = domain_of(case["experiment"])
        curve = [
            checkpoint_point(s, generator, critic, train, held, reference, domain) for s in steps
        ]
    generator.eval()
    with torch.no_grad():
        samples = generator(
            torch.randn(
                NUM_GENERATED, LATENT, generator=torch.Generator().manual_seed(METRIC_SEED + 1)
            )
        )
    logged = [
        {
            "step": r.get("step"),
            "images_seen": r["images_seen"],
            "p": r.get("augment/p"),
            "r_t": r.get("augment/r_t"),
        }
        for r in records
        if r.get("event") == "train"
    ]
    fds = [c["fd"] for c in curve]
    return {
        "key": case_key(case),
        **{k: v for k, v in case.items() if k not in ("keep_dir",)},
        "steps_done": result.step,
        "images_seen": result.images_seen,
        "best_fd": min(fds) if fds else None,
        "best_step": curve[fds.index(min(fds))]["step"] if fds else None,
        "final_fd": fds[-1] if fds else None,
        "final_p": logged[-1]["p"] if logged else None,
        "train_seconds": round(seconds, 1),  # wall clock: depends on the machine's other load
        "cpu_seconds": round(cpu_seconds, 1),  # CPU time of the (one-thread) process, training
        "curve": curve,
        "logged": logged,
        "samples": samples,
        "config": document,
    }


def _quiet_worker() -> None:
    # Workers print only errors: the parent prints one line per finished case.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the worker)


# -------------------------------------------------------------------------------------------------
# The grid
# -------------------------------------------------------------------------------------------------


def cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every run this call makes, in the order they start (ADA before the fixed p it sets)."""
    common = {"steps": args.steps, "eval_every": args.eval_every, "speed_images": args.speed_images}
    out = []
    for subset in args.subsets:  # the most important cells first: smallest sets, then seeds
        for seed in args.seeds:
            for aug in args.augmenters:
                # the dcgan critic's batch norm is the default; another norm is its own experiment
                experiment = DOMAINS[args.domain]["experiment"]
                if args.critic_norm != "batch":
                    experiment += f"-{args.critic_norm}"
                case = {"experiment": experiment, "subset": subset, "augmenter": aug, "aug": aug}
                case.update(common, seed=seed, p=0.9 if aug == "fixed-0.9" else None)
                case["critic_norm"] = args.critic_norm
                out.append(case)
    # A fixed p is ADA's settled value: those runs start once an ADA run of their size is done.
    out.sort(key=lambda c: c["augmenter"] == "fixed")
    if args.transfer:
        base = {"experiment": "base", "subset": 902, "augmenter": "none", "aug": "none"}
        base.update(
            steps=args.base_steps,
            eval_every=args.base_steps,
            speed_images=args.speed_images,
            seed=0,
            keep_dir=str(args.work / "base"),
        )
        out.insert(0, base)
        for seed in args.transfer_seeds:
            for variant in args.transfer_variants:
                case = {
                    "experiment": "transfer",
                    "subset": TRANSFER_SUBSET,
                    "augmenter": variant,
                    "aug": "ada" if "ada" in variant else "none",
                    "freeze_d": "freeze-d" in variant,
                    "init": str(args.work / "base") if variant.startswith("init") else None,
                    "steps": args.transfer_steps,
                    "eval_every": args.eval_every,
                    "speed_images": args.speed_images // 5,  # the paper's 100k against 500k
                    "seed": seed,
                }
                out.append(case)
    return out


def ready(case: dict[str, Any], done: list[dict[str, Any]], pending: list[dict[str, Any]]) -> bool:
    """A fixed-p case waits for its subset's ADA runs; a fine-tuning case for the base run."""
    if case["experiment"] == "transfer" and case.get("init"):
        return any(r["experiment"] == "base" for r in done)
    if case["augmenter"] != "fixed":
        return True
    return any(
        r["experiment"] == case["experiment"]
        and r["augmenter"] == "ada"
        and r["subset"] == case["subset"]
        for r in done
    )


def settled_p(case: dict[str, Any], done: list[dict[str, Any]]) -> float:
    """The mean final p of the ADA runs of this subset finished so far, to 2 decimals."""
    ps = [
        r["final_p"]
        for r in done
        if r["experiment"] == case["experiment"]
        and r["augmenter"] == "ada"
        and r["subset"] == case["subset"]
    ]
    return round(statistics.fmean(ps), 2)


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (0 for one value)."""
    if len(values) < 2:
        return values[0], 0.0
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (experiment, subset, augmenter): mean ± s.e. over seeds."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["experiment"], r["subset"], r["augmenter"]), []).append(r)
    rows = []
    for (experiment, subset, augmenter), group in groups.items():
        best, best_se = mean_se([r["best_fd"] for r in group])
        final, final_se = mean_se([r["final_fd"] for r in group])
        last = [r["curve"][-1] for r in group]
        ps = [r["final_p"] for r in group if r["final_p"] is not None]
        rows.append(
            {
                "experiment": experiment,
                "subset": subset,
                "augmenter": augmenter,
                "seeds": sorted(r["seed"] for r in group),
                "steps": group[0]["steps"],
                "p": group[0].get("p"),
                "best_fd": best,
                "best_fd_se": best_se,
                "final_fd": final,
                "final_fd_se": final_se,
                "best_step": statistics.median(r["best_step"] for r in group),
                "final_r_train": statistics.fmean(c["r_train"] for c in last),
                "final_r_held_out": statistics.fmean(c["r_held_out"] for c in last),
                "final_gap": statistics.fmean(c["gap"] for c in last),
                "final_p": statistics.fmean(ps) if ps else None,
                "leak_transformed": statistics.fmean(
                    r.get("leak_transformed", float("nan")) for r in group
                ),
                "cpu_seconds": statistics.fmean(r["cpu_seconds"] for r in group),
            }
        )
    order = {name: i for i, name in enumerate(AUGMENTERS + TRANSFER)}
    rows.sort(
        key=lambda r: (
            not is_limited(r["experiment"]),
            r["experiment"],
            r["subset"],
            order[r["augmenter"]],
        )
    )
    return rows


# -------------------------------------------------------------------------------------------------
# Leak check: which of the 8 symmetries of the square was applied?
# -------------------------------------------------------------------------------------------------


def dihedral(x: Any, k: int) -> Any:
    """Element ``k`` of D4 on images ``[N, C, H, W]``: ``k % 4`` quarter turns, mirrored if
    ``k >= 4``."""
    import torch

    y = torch.rot90(x, k % 4, dims=(-1, -2))
    return y.flip(-1) if k >= 4 else y


def train_leak_classifier(
    epochs: int, seed: int = 0, domain: str = "digits"
) -> tuple[Any, dict[str, float]]:
    """A small CNN that predicts the D4 element applied to a real image of the domain; its
    held-out accuracy and its false-positive rate (untransformed held-out images called
    transformed)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    data = full_domain(domain)
    images = data.get_batch(list(range(len(data))))["x"]
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(images))
    train, held = images[order[:cut]], images[order[cut:]]
    channels, size = DOMAINS[domain]["channels"], DOMAINS[domain]["size"]
    layers: list[Any] = [
        nn.Conv2d(channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
    ]
    while size // 2 ** (len(layers) // 3) > 4:  # down to 4x4 (16 px: two pools, as before)
        layers += [nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    net = nn.Sequential(
        *layers,
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


def cached_leak_classifier(
    epochs: int, work: Path, domain: str = "digits"
) -> tuple[Any, dict[str, float]]:
    """:func:`train_leak_classifier`, kept in ``work`` so that later calls score with the same
    classifier."""
    import torch

    name = f"leak-classifier-{epochs}.pt" if domain == "digits" else f"leak-{domain}-{epochs}.pt"
    path = work / name
    if path.is_file():
        saved = torch.load(path, weights_only=False)
        return saved["net"], saved["info"]
    net, info = train_leak_classifier(epochs, domain=domain)
    torch.save({"net": net, "info": info}, path)
    return net, info


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
    def fmt(value: float | None, digits: int = 2) -> str:
        return "-" if value is None or value != value else f"{value:.{digits}f}"

    def percent(share: float | None) -> str:
        return "-" if share is None or share != share else f"{100 * share:.1f}%"

    lines: list[str] = []
    for domain, spec in DOMAINS.items():
        rows_ = [r for r in report["summary"] if domain_of(r["experiment"]) == domain]
        if not rows_:
            continue
        if lines:
            lines.append("")
        lines += [
            f"| training {spec['unit']} | augmenter | seeds | steps | best {spec['fd']} | "
            f"final {spec['fd']} | best at step | r_t train / held-out (end) | gap (end) | "
            "p (end) | transformed | CPU s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows_:
            name = row["augmenter"]
            if name == "fixed":
                name = f"fixed p = {row['p']:.2f}"
            where = {"base": " (base: digits 0-4)", "transfer": " of 5-9"}
            norm = row["experiment"].removeprefix(spec["experiment"]).removeprefix("-")
            where.setdefault(row["experiment"], f", critic norm '{norm}'" if norm else "")
            lines.append(
                f"| {row['subset']}{where[row['experiment']]} | {name} | {len(row['seeds'])} | "
                f"{row['steps']} | {row['best_fd']:.2f} ± {row['best_fd_se']:.2f} | "
                f"{row['final_fd']:.2f} ± {row['final_fd_se']:.2f} | {row['best_step']:.0f} | "
                f"{fmt(row['final_r_train'])} / {fmt(row['final_r_held_out'])} | "
                f"{fmt(row['final_gap'])} | {fmt(row['final_p'])} | "
                f"{percent(row['leak_transformed'])} | {row['cpu_seconds']:.0f} |"
            )
        leak = report.get(leak_key(domain))
        if leak:
            lines.append(
                f"| held-out real | - | - | - | - | - | - | - | - | - | "
                f"{100 * leak['real_called_transformed']:.1f}% | - |"
            )
    rows = report.get("throughput") or []
    if rows:
        lines += [
            "",
            "| augmenter | size | forward img/s | forward + backward img/s |",
            "|---|---|---|---|",
        ]
        for name in dict.fromkeys(r["augmenter"] for r in rows):
            for size in (32, 64):
                fwd, bwd = (
                    next(
                        r
                        for r in rows
                        if r["augmenter"] == name and r["size"] == size and r["backward"] is b
                    )
                    for b in (False, True)
                )
                lines.append(
                    f"| {name} | {size} | {fwd['images_per_s']:.0f} | {bwd['images_per_s']:.0f} |"
                )
    return "\n".join(lines)


COLORS = {
    "none": "black",
    "ada": "tab:red",
    "fixed": "tab:orange",
    "diffaugment": "tab:blue",
    "fixed-0.9": "tab:purple",
    "bcr": "tab:green",
    "scratch": "gray",
    "scratch-ada": "tab:pink",
    "init": "black",
    "init-ada": "tab:red",
    "init-freeze-d": "tab:green",
    "init-ada-freeze-d": "tab:brown",
}


def leak_key(domain: str) -> str:
    """The report's key of a domain's leak classifier."""
    return "leak_classifier" if domain == "digits" else f"leak_classifier_{domain}"


def panel(experiment: str, subset: int) -> str:
    """A figure panel's title: the training-set size, and the critic's norm if not batch."""
    spec = DOMAINS[domain_of(experiment)]
    norm = experiment.removeprefix(spec["experiment"]).removeprefix("-")
    return f"{subset} {spec['unit']}" + (f", critic norm '{norm}'" if norm else "")


def mean_curve(group: list[dict[str, Any]], key: str) -> tuple[Any, Any, Any]:
    """Images seen (thousands), mean and s.e. of ``key`` over the runs' common checkpoints."""
    import numpy as np

    length = min(len(r["curve"]) for r in group)
    values = np.array([[c[key] for c in r["curve"][:length]] for r in group])
    seen = np.array([c["step"] * BATCH / 1000 for c in group[0]["curve"][:length]])
    se = values.std(0, ddof=1) / np.sqrt(len(group)) if len(group) > 1 else 0 * values[0]
    return seen, values.mean(0), se


def figures(report: dict[str, Any]) -> list[str]:
    """FD(t), the critic's overfitting, p(t) and r_t(t), transfer, and sample grids; one set of
    limited-data pictures per domain (``ada_fd.png`` for the digits, ``ada_fd_skimage.png`` ...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    written: list[str] = []

    def group(experiment: str, subset: int, augmenter: str) -> list[dict[str, Any]]:
        return [
            r
            for r in runs
            if r["experiment"] == experiment
            and r["subset"] == subset
            and r["augmenter"] == augmenter
        ]

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        path = FIGURES / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))

    for domain in DOMAINS:
        suffix = "" if domain == "digits" else f"_{domain}"
        # one panel per (experiment, size): the batch-norm critic's runs, then other norms'
        limited = sorted(
            {
                (r["experiment"], r["subset"])
                for r in runs
                if is_limited(r["experiment"]) and domain_of(r["experiment"]) == domain
            },
            key=lambda key: (key[0] != DOMAINS[domain]["experiment"], key),
        )
        if not limited:
            continue
        fd_name = DOMAINS[domain]["fd"]
        # FD over training (the paper's Fig. 1a shape), one panel per training-set size.
        fig, axes = plt.subplots(1, len(limited), figsize=(4.2 * len(limited), 3.6), squeeze=False)
        for ax, (experiment, subset) in zip(axes[0], limited, strict=True):
            for aug in AUGMENTERS:
                runs_ = group(experiment, subset, aug)
                if not runs_:
                    continue
                seen, mean, se = mean_curve(runs_, "fd")
                label = aug if aug != "fixed" else f"fixed p={runs_[0]['p']:.2f}"
                ax.plot(seen, mean, color=COLORS[aug], label=f"{label} ({len(runs_)})")
                ax.fill_between(seen, mean - se, mean + se, color=COLORS[aug], alpha=0.2)
            ax.set(
                title=panel(experiment, subset),
                xlabel="real images seen (thousands)",
                ylabel=fd_name,
            )
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        save(fig, f"ada_fd{suffix}.png")
        # The critic's overfitting (Fig. 1b): r_t on training and held-out images, and the gap.
        fig, axes = plt.subplots(2, len(limited), figsize=(4.2 * len(limited), 6.4), squeeze=False)
        for col, (experiment, subset) in enumerate(limited):
            for aug in ("none", "ada", "diffaugment", "bcr"):
                runs_ = group(experiment, subset, aug)
                if not runs_:
                    continue
                seen, r_train, _ = mean_curve(runs_, "r_train")
                _, r_held, _ = mean_curve(runs_, "r_held_out")
                _, gap, se = mean_curve(runs_, "gap")
                ax = axes[0][col]
                ax.plot(seen, r_train, color=COLORS[aug], label=f"{aug}: training")
                ax.plot(seen, r_held, color=COLORS[aug], linestyle="--", label=f"{aug}: held-out")
                axes[1][col].plot(seen, gap, color=COLORS[aug], label=aug)
                axes[1][col].fill_between(seen, gap - se, gap + se, color=COLORS[aug], alpha=0.2)
            axes[0][col].set(title=f"{panel(experiment, subset)}: E[sign D(x)]", ylim=(-1.05, 1.05))
            axes[1][col].set(
                title="mean D(training) - mean D(held-out)",
                xlabel="real images seen (thousands)",
            )
            axes[0][col].legend(fontsize=6)
            axes[1][col].legend(fontsize=7)
        save(fig, f"ada_overfit{suffix}.png")
        # ADA's p(t) and its r_t(t) (the paper's Fig. 5 shape).
        fig, (ax_p, ax_r) = plt.subplots(1, 2, figsize=(10, 3.6))
        cmap = plt.get_cmap("viridis")
        for i, (experiment, subset) in enumerate(limited):
            color = cmap(i / max(1, len(limited) - 1))
            for j, run in enumerate(group(experiment, subset, "ada")):
                logged = [t for t in run["logged"] if t["p"] is not None]
                seen = [t["images_seen"] / 1000 for t in logged]
                legend = panel(experiment, subset) if j == 0 else None
                ax_p.plot(seen, [t["p"] for t in logged], color=color, label=legend, lw=1)
                ax_r.plot(seen, [t["r_t"] for t in logged], color=color, label=legend, lw=0.8)
        ax_r.axhline(0.6, color="gray", linestyle="--", linewidth=1, label="target 0.6")
        ax_p.set(xlabel="real images seen (thousands)", ylabel="p", title="ADA strength p")
        ax_r.set(
            xlabel="real images seen (thousands)",
            ylabel="r_t",
            title="r_t = E[sign D(augmented real)]",
        )
        ax_p.legend(fontsize=7)
        ax_r.legend(fontsize=7)
        save(fig, f"ada_p{suffix}.png")
    transfer = [r for r in runs if r["experiment"] == "transfer"]
    if transfer:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for variant in TRANSFER:
            runs_ = group("transfer", TRANSFER_SUBSET, variant)
            if not runs_:
                continue
            seen, mean, se = mean_curve(runs_, "fd")
            ax.plot(seen, mean, color=COLORS[variant], label=f"{variant} ({len(runs_)})")
            ax.fill_between(seen, mean - se, mean + se, color=COLORS[variant], alpha=0.2)
        ax.set(
            title=f"{TRANSFER_SUBSET} digits of 5-9, after digits 0-4",
            xlabel="real images seen (thousands)",
            ylabel="FD against all digits 5-9",
        )
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        save(fig, "ada_transfer.png")
    for domain in DOMAINS:
        shown = [
            r
            for r in runs
            if r.get("grid") is not None and r["seed"] == 0 and domain_of(r["experiment"]) == domain
        ]
        if shown:
            save(
                sample_figure(shown, plt),
                f"ada_samples{'' if domain == 'digits' else '_' + domain}.png",
            )
    return written


def grid_images(row: dict[str, Any]) -> Any:
    """A run's stored sample grid as ``[N, H, W, C]`` floats in [0, 1] (digits: floats in
    [-1, 1]; photo patches: 8-bit values)."""
    import numpy as np

    imgs = np.asarray(row["grid"], dtype=np.float32)
    scaled = imgs / 255.0 if row.get("grid_uint8") else (imgs + 1) / 2
    return scaled.transpose(0, 2, 3, 1)


def sample_figure(shown: list[dict[str, Any]], plt: Any) -> Any:
    """Sample grids of ``shown`` runs, one panel each, every image in a 1-pixel gray frame."""
    import numpy as np

    columns = min(5, len(shown))
    rows = math.ceil(len(shown) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, shown, strict=False):
        imgs = grid_images(row)
        n, h, w, c = imgs.shape
        side = math.isqrt(n)
        framed = np.pad(imgs[: side * side], ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=0.25)
        grid = framed.reshape(side, side, h + 2, w + 2, c).transpose(0, 2, 1, 3, 4)
        grid = grid.reshape(side * (h + 2), side * (w + 2), c)
        if c == 1:
            ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(grid.clip(0, 1))
        where = (
            "5-9 after 0-4"
            if row["experiment"] == "transfer"
            else panel(row["experiment"], row["subset"])
        )
        ax.set_title(f"{where}, {row['augmenter']}\nfinal FD {row['final_fd']:.1f}", fontsize=7)
    return fig


def write(report: dict[str, Any], path: Path) -> None:
    report["summary"] = summary(report["runs"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subsets", nargs="*", type=int, default=[100, 300])
    parser.add_argument(
        "--domain",
        choices=sorted(DOMAINS),
        default="digits",
        help="training images of the limited-data runs: the digits at 16 px, or 32-px patches "
        "of scikit-image's photos (needs gan-inpaint and gan-superres)",
    )
    parser.add_argument(
        "--augmenters", nargs="+", default=["none", "ada", "fixed", "diffaugment", "bcr"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--eval-every", type=int, default=400, help="steps between FD points")
    parser.add_argument("--speed-images", type=int, default=10_000)
    parser.add_argument(
        "--critic-norm", default="batch", help="the dcgan critic's norm (limited-data runs)"
    )
    parser.add_argument("--transfer", action="store_true", help="also the transfer experiment")
    parser.add_argument("--transfer-variants", nargs="+", default=list(TRANSFER))
    parser.add_argument("--transfer-seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--transfer-steps", type=int, default=1600)
    parser.add_argument("--base-steps", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "gancore-ada")
    parser.add_argument("--jobs", type=int, default=2, help="training runs at once")
    parser.add_argument(
        "--leak-epochs", type=int, default=8, help="the leak classifier's epochs; 0: no leak check"
    )
    parser.add_argument("--throughput", action="store_true", help="measure augmenter cost")
    parser.add_argument("--repeats", type=int, default=7, help="throughput repeats")
    parser.add_argument("--keep", action="store_true", help="keep --out's runs not repeated")
    parser.add_argument("--out", type=Path, default=RESULTS / "ada.json")
    parser.add_argument(
        "--replot", action="store_true", help="only redraw the figures from --out and print tables"
    )
    parser.add_argument(
        "--merge", nargs="+", type=Path, default=[], help="with --replot: add these files' runs"
    )
    args = parser.parse_args(argv)
    for name in args.augmenters:
        if name not in AUGMENTERS:
            parser.error(
                f"--augmenters: unknown {name!r}; expected some of {', '.join(AUGMENTERS)}"
            )
    if args.transfer and args.domain != "digits":
        parser.error("--transfer: the transfer experiment is on the digits; drop --domain")
    if args.replot:
        saved = json.loads(args.out.read_text())
        for other in args.merge:
            # another call's file (--out elsewhere, e.g. runs made at the same time): its runs
            # replace those of the same key, its commands and throughput join this file's
            extra = json.loads(other.read_text())
            keys = {r["key"] for r in extra["runs"]}
            saved["runs"] = [r for r in saved["runs"] if r["key"] not in keys] + extra["runs"]
            saved["commands"] += [c for c in extra["commands"] if c not in saved["commands"]]
            if extra.get("throughput"):
                saved["throughput"] = extra["throughput"]
        if args.merge:
            write(saved, args.out)
        figures(saved)
        print(tables(saved))
        return 0

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    command = "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    todo = cases(args)
    keys = {case_key(c) for c in todo}
    report: dict[str, Any] = {"runs": []}
    if args.keep and args.out.is_file():
        report = json.loads(args.out.read_text())
        report["runs"] = [r for r in report["runs"] if r["key"] not in keys]
    report.setdefault("commands", []).append(command)
    report.update(machine=machine(1, "gan-ada"))
    protocol = report.setdefault("protocol", {})
    protocol.update(
        {
            "data": f"digits {RESOLUTION}x{RESOLUTION}, the first N of a shuffle seeded 0",
            "scores": f"fd-digits of {NUM_GENERATED} EMA samples (seed {METRIC_SEED}) against "
            "all 1,797 digits (transfer: all 898 digits 5-9), at every checkpoint",
            "critic": "mean D and E[sign D] on the training and held-out images, unaugmented",
            "extractor": "digits-classifier (bundled with gancore)",
            "leak": "share of the final samples a D4 classifier calls rotated or flipped",
        }
    )
    if args.domain == "skimage":
        protocol["skimage"] = (
            "32x32 patches of 8 scikit-image photos at half size, stride 16 (gan-inpaint's "
            "skimage-patches, train split: 1,210), the first N of a shuffle seeded 0; "
            f"fd-sr-features of {NUM_GENERATED} EMA samples against all 1,210, extractor "
            "gan-superres's bundled sr-features (input resized to 96)"
        )
    if args.throughput:
        print("throughput ...", file=sys.stderr, flush=True)
        report["throughput"] = throughput(args.repeats, warmup=2)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{len(todo)} training runs, {args.jobs} at a time", file=sys.stderr, flush=True)
    done = [r for r in report["runs"]]
    pending = list(todo)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        args.jobs, mp_context=context, initializer=_quiet_worker
    ) as pool:
        running: dict[concurrent.futures.Future[dict[str, Any]], dict[str, Any]] = {}

        def submit() -> None:
            for case in list(pending):
                if len(running) >= args.jobs:
                    return
                if ready(case, done, pending + list(running.values())):
                    if case["augmenter"] == "fixed":
                        case["p"] = settled_p(case, done)
                    pending.remove(case)
                    running[pool.submit(run_case, case)] = case

        submit()
        # Meanwhile, in this process: the leak classifier (none with --leak-epochs 0).
        net = None
        if args.leak_epochs > 0:
            print("leak classifier ...", file=sys.stderr, flush=True)
            net, report[leak_key(args.domain)] = cached_leak_classifier(
                args.leak_epochs, args.work, args.domain
            )
        while running:
            finished, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in finished:
                running.pop(future)
                row = future.result()
                samples = row.pop("samples")
                if net is not None:
                    row.update(leak_share(net, samples))
                if row["seed"] == min(args.seeds) and row["subset"] == 100:
                    if args.domain == "digits":
                        row["grid"] = samples[:36].numpy().round(3).tolist()
                    else:  # 16 colour patches as 8-bit values: a tenth of the floats' JSON
                        pixels = ((samples[:16].clamp(-1, 1) + 1) * 127.5).round()
                        row["grid"] = pixels.to(torch.uint8).tolist()
                        row["grid_uint8"] = True
                done.append(row)
                report["runs"].append(row)
                write(report, args.out)
                print(
                    f"{row['key']}: best FD {row['best_fd']:.2f} (step {row['best_step']}), "
                    f"final {row['final_fd']:.2f}, p {row['final_p']}, r_t train/held "
                    f"{row['curve'][-1]['r_train']:.2f}/{row['curve'][-1]['r_held_out']:.2f}, "
                    f"transformed {row.get('leak_transformed', float('nan')):.3f}, "
                    f"{row['cpu_seconds']:.0f} CPU s",
                    file=sys.stderr,
                    flush=True,
                )
            submit()
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["figures"] = figures(report)
    write(report, args.out)
    print(tables(report))
    print(f"\nwritten to {args.out} in {report['total_seconds']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
