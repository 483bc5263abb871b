"""SinGAN on photos bundled with scikit-image (the issue's gan-progressive SinGAN benchmark).

    python benchmarks/singan.py [--images coffee hubble_deep_field immunohistochemistry]
        [--iterations 500] [--max-size 64] [--samples 16] [--quick] [--out FILE]

Each image is trained by examples/singan-coffee.toml with only ``data.image``, ``task.iterations``
and ``data.max_size`` changed (one thread, one run after the other), then scored on ``--samples``
random samples at the training size:

- **SIFID** (single-image FID; Shaham et al. 2019, Sec. 4): the Fréchet distance between the
  distributions of a feature extractor's vectors at every position of the real image and of one
  sample, averaged over the samples. The paper uses Inception's features before its second
  pooling layer; these are the bundled ``digits-classifier``'s after its second convolution (64
  channels at half the resolution, the grey image at its own size, not resized), so the values
  are not comparable with the paper's.
- **diversity**: the standard deviation of each pixel across the samples, averaged over pixels
  and channels, divided by the standard deviation of the image's pixels (the paper's measure).
- **reconstruction RMSE**: of the fixed-noise reconstruction against the image, pixels in [-1, 1].
- **wall time per scale** and in all, on this machine.

With ``--out FILE``, a picture per image lands next to it (``singan-NAME.png``: the image, its
reconstruction, then 6 samples, at twice the size).

``--quick``: 20 iterations per scale and 4 samples (a smoke test of the script, not a result).
Needs gan-wgan and gan-progressive.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import finish, machine

import gancore
from gancore.metrics.extractors import DigitsClassifierOptions, build_digits_classifier
from gancore.metrics.math import frechet_distance

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "singan-coffee.toml"


def position_features(extractor: Any, images: torch.Tensor) -> list[np.ndarray]:
    """Per image of ``[N, C, H, W]`` in [-1, 1]: the extractor's second-convolution features at
    every position, ``[positions, 64]`` float64 (grey, native size)."""
    grey = images.mean(dim=1, keepdim=True) if images.shape[1] == 3 else images
    with torch.no_grad():
        x = F.max_pool2d(F.relu(extractor.conv1(grey.float())), 2)
        x = F.relu(extractor.conv2(x))
    return [f.reshape(f.shape[0], -1).T.double().numpy() for f in x]


def sifid(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(
        real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
    )


def score(
    generator: Any, extractor: Any, samples: int, seed: int, picture: Path | None
) -> dict[str, float]:
    real = generator.real(len(generator.scales) - 1)
    z = torch.randn(samples, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        fakes = generator(z).clamp(-1, 1)
        rec = generator.reconstruct()
    if picture is not None:  # the image, its reconstruction, then 6 samples, twice the size
        shown = torch.cat([real, rec, fakes[:6]])
        gancore.save_grid(F.interpolate(shown, scale_factor=2.0, mode="nearest"), picture, 4)
    (real_features,) = position_features(extractor, real)
    values = [sifid(real_features, f) for f in position_features(extractor, fakes)]
    return {
        "sifid_mean": float(np.mean(values)),
        "sifid_sd": float(np.std(values)),
        "diversity": float(fakes.std(dim=0).mean() / real.std()),
        "reconstruction_rmse": float(torch.sqrt(F.mse_loss(rec, real))),
        "size": list(real.shape[-2:]),
        "scales": len(generator.scales),
    }


def stage_times(run_dir: Path) -> dict[str, float]:
    """Wall seconds per scale: each train record's steps times its seconds per step, summed by
    the scale of the record's stage (config.toml holds the task's planned stages)."""
    stages = gancore.load_config(run_dir / "config.toml").stages
    times: dict[str, float] = {}
    previous = 0
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("event") != "train":
            continue
        scale = f"scale {stages[record['stage']].options['scale']}"
        times[scale] = times.get(scale, 0.0) + (record["step"] - previous) * record["sec_per_step"]
        previous = record["step"]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--images", nargs="+", default=["coffee", "hubble_deep_field", "immunohistochemistry"]
    )
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--max-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.samples = 20, 4
    torch.set_num_threads(1)
    started = time.perf_counter()
    extractor = build_digits_classifier(DigitsClassifierOptions())
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/singan.py", *sys.argv[1:]]),
        "machine": machine(),
        "iterations_per_scale": args.iterations,
        "max_size": args.max_size,
        "samples": args.samples,
        "images": {},
    }
    base = tomllib.loads(EXAMPLE.read_text())
    for name in args.images:
        document = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
        document["run"] = {**base["run"], "name": f"singan-{name}", "seed": args.seed}
        document["data"] = {**base["data"], "image": f"skimage:{name}", "max_size": args.max_size}
        document["task"] = {**base["task"], "iterations": args.iterations}
        document["training"] = {
            **base["training"],
            "sample_every": 0,
            "checkpoint_every": 0,
            "log_every": 10,
        }
        config = gancore.parse_config(document, gancore.get_registry())
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = gancore.train(config, Path(tmp) / "run", progress=False)
            wall = time.perf_counter() - t0
            per_scale = stage_times(Path(tmp) / "run")
        picture = args.out.with_name(f"singan-{name}.png") if args.out else None
        scores = score(result.generators["generator"], extractor, args.samples, args.seed, picture)
        results["images"][name] = {**scores, "train_seconds": wall, "seconds_per_scale": per_scale}
        print(f"{name}: {scores} in {wall:.0f} s", file=sys.stderr, flush=True)
    finish(results, started, args.out)


if __name__ == "__main__":
    main()
