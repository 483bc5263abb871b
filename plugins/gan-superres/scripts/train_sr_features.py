"""Train the bundled ``sr-features`` extractor of gan-superres and write its weights.

    python plugins/gan-superres/scripts/train_sr_features.py [--out PATH] [--steps N]

Trains :class:`gan_superres.features.SRFeatures` (three blocks of two 3x3 convolutions, 16-32-64
channels) on random 32x32 crops of the twelve default training photos
(:data:`gan_superres.datasets.TRAIN_PHOTOS`); the held-out photos of the example and benchmark
(chelsea, rocket, camera, coins) are never read. Each photo is split by columns: crops for
training come from its left three quarters, crops for the reported figures from its right quarter.

Objective: ``0.3 CE(photo) + CE(degradation)``, two linear heads on the logarithm of the globally
pooled features: *which photo* (12 classes: texture and colour) and *which degradation* (sharp,
bicubic down and up by 2, by 4, with :mod:`gan_superres.degrade`, applied to each region as a
whole: features that see lost detail). A batch is 24 random positions, each in all three
degradations under one random flip/rotation, so that the degradation head learns from differences
the content cannot explain. AdamW (lr 2e-3, weight decay 1e-4), 2,500 steps, cosine decay.

Then it measures ``content_scale = sqrt(pixel MSE / feature MSE)`` over 96x96 crops of the
held-out quarters and their bicubic x4 reconstructions, and writes a safetensors file whose
metadata (one JSON value) holds the architecture, the content scale, the figures and the training
settings. CPU, two threads, fixed seeds and deterministic algorithms: the same torch version gives
the same bytes (the sha256 is printed; gan_superres/features.py records it). About two minutes
on two cores.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from gan_superres.datasets import TRAIN_PHOTOS, load_source
from gan_superres.degrade import bicubic_upscale, downscale
from gan_superres.features import (
    HEAD_EPSILON,
    SR_FEATURES_METADATA_KEY,
    SRFeatures,
    bundled_sr_features_weights,
)
from safetensors.torch import save_file

from gancore.metrics.extractors import file_sha256

CHANNELS = (16, 32, 64)
CONVS_PER_BLOCK = 2
DEGRADATIONS = ("sharp", "bicubic-x2", "bicubic-x4")
FACTORS = (None, 2, 4)  # the degradation of each class: None = sharp
CROP = 32  # training and evaluation crops
SCALE_CROP = 96  # crops that measure content_scale (SRGAN's HR crop size)
HELD_OUT = 0.25  # the right quarter of each photo is never trained on
BATCH_SIZE = 72  # 24 positions x 3 degradations
STEPS = 2500
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
PHOTO_WEIGHT = 0.3  # at 1 the photo task crowds out the degradation task (0.42 against 0.78
# held-out degradation accuracy after 1000 steps)
EVAL_CROPS = 50  # per photo and degradation
SCALE_CROPS = 8  # per photo
THREADS = 2  # the thread count changes reduction order, hence the bytes: fixed
SEED = 0


def degraded(region: torch.Tensor, factor: int | None) -> torch.Tensor:
    """``region [3, H, W]`` (sides multiples of 4) as it is, or bicubic down and up by ``factor``."""
    if factor is None:
        return region
    return bicubic_upscale(downscale(region[None], factor), factor)[0]


def load_regions() -> tuple[list[str], list[torch.Tensor], list[torch.Tensor]]:
    """Photo names and, per photo, its training and held-out regions in every degradation,
    ``[3 degradations, 3, H, W]`` in ``[-1, 1]``."""
    names, train, held_out = [], [], []
    for source in TRAIN_PHOTOS:
        for name, photo in load_source(source, channels=3):
            _, h, w = photo.shape
            split = int(w * (1.0 - HELD_OUT)) // 4 * 4
            image = photo[:, : h // 4 * 4] * 2.0 - 1.0
            parts = (image[:, :, :split], image[:, :, split : split + (w - split) // 4 * 4])
            names.append(name)
            train.append(torch.stack([degraded(parts[0], f) for f in FACTORS]))
            held_out.append(torch.stack([degraded(parts[1], f) for f in FACTORS]))
    return names, train, held_out


def random_crop(region: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A ``size x size`` crop of ``region [..., H, W]`` at a random position."""
    h, w = region.shape[-2:]
    top = int(torch.randint(0, h - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - size + 1, (1,), generator=generator))
    return region[..., top : top + size, left : left + size]


def training_batch(
    regions: list[torch.Tensor], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crops ``[B, 3, CROP, CROP]`` and their photo and degradation labels: ``B / 3`` random
    positions, each in all three degradations (one flip/rotation for the three), so that the
    degradation head learns from differences that the content cannot explain."""
    positions = BATCH_SIZE // len(DEGRADATIONS)
    photos = torch.randint(0, len(regions), (positions,), generator=generator)
    crops = []
    for photo in photos.tolist():
        triplet = random_crop(regions[photo], CROP, generator)
        turns, flip = (int(v) for v in torch.randint(0, 4, (2,), generator=generator))
        triplet = torch.rot90(triplet, turns, dims=(2, 3))
        crops.append(triplet.flip(3) if flip % 2 else triplet)
    kinds = torch.arange(len(DEGRADATIONS)).repeat(positions)
    return torch.cat(crops), photos.repeat_interleave(len(DEGRADATIONS)), kinds


def evaluation_set(
    regions: list[torch.Tensor], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``EVAL_CROPS`` positions per held-out region, each in all three degradations."""
    crops, photos, kinds = [], [], []
    for photo, region in enumerate(regions):
        for _ in range(EVAL_CROPS):
            for kind, crop in enumerate(random_crop(region, CROP, generator)):
                crops.append(crop)
                photos.append(photo)
                kinds.append(kind)
    return torch.stack(crops), torch.tensor(photos), torch.tensor(kinds)


def figures(
    model: SRFeatures, crops: torch.Tensor, photos: torch.Tensor, kinds: torch.Tensor
) -> dict[str, float]:
    """Held-out accuracies of both heads, and of sharp against degraded (x2 or x4)."""
    with torch.no_grad():
        photo_logits, kind_logits = model.head_logits(crops)
    predicted = kind_logits.argmax(dim=1)
    return {
        "photo_accuracy": float((photo_logits.argmax(dim=1) == photos).double().mean()),
        "degradation_accuracy": float((predicted == kinds).double().mean()),
        "sharp_vs_degraded_accuracy": float(((predicted == 0) == (kinds == 0)).double().mean()),
    }


def content_scale(
    model: SRFeatures, regions: list[torch.Tensor], generator: torch.Generator
) -> dict[str, float]:
    """``sqrt(pixel MSE / feature MSE)`` of sharp 96x96 held-out crops against their bicubic x4
    reconstructions (each crop degraded on its own, as the srgan task does), both MSEs, and for
    comparison the scaled content MSE of white noise with the same pixel MSE."""
    sharp = torch.stack(
        [random_crop(r[0], SCALE_CROP, generator) for r in regions for _ in range(SCALE_CROPS)]
    )
    bicubic = bicubic_upscale(downscale(sharp, 4), 4)
    pixel_mse = float(F.mse_loss(bicubic, sharp))
    noise = torch.randn(sharp.shape, generator=generator) * math.sqrt(pixel_mse)
    with torch.no_grad():
        target = model.feature_map(sharp)
        feature_mse = float(F.mse_loss(model.feature_map(bicubic), target))
        noise_mse = float(F.mse_loss(model.feature_map(sharp + noise), target))
    scale = float(f"{math.sqrt(pixel_mse / feature_mse):.4g}")
    return {
        "content_scale": scale,
        "pixel_mse_x4": pixel_mse,
        "feature_mse_x4": feature_mse,
        "content_mse_noise": noise_mse * scale**2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=bundled_sr_features_weights())
    parser.add_argument("--steps", type=int, default=STEPS, help="optimizer steps")
    args = parser.parse_args()

    started = time.perf_counter()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)  # the network's initial weights
    generator = torch.Generator().manual_seed(SEED)  # crops and labels
    held_out_generator = torch.Generator().manual_seed(SEED + 1)  # evaluation crops

    names, train_regions, held_out_regions = load_regions()
    eval_crops, eval_photos, eval_kinds = evaluation_set(held_out_regions, held_out_generator)
    print(f"{len(names)} photos ({', '.join(names)}); {len(eval_crops)} held-out crops")
    model = SRFeatures(
        channels=CHANNELS,
        convs_per_block=CONVS_PER_BLOCK,
        num_photos=len(names),
        num_degradations=len(DEGRADATIONS),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)

    for step in range(1, args.steps + 1):
        model.train()
        crops, photos, kinds = training_batch(train_regions, generator)
        photo_logits, kind_logits = model.head_logits(crops)
        photo_loss = F.cross_entropy(photo_logits, photos)
        kind_loss = F.cross_entropy(kind_logits, kinds)
        optimizer.zero_grad(set_to_none=True)
        (PHOTO_WEIGHT * photo_loss + kind_loss).backward()
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == args.steps:
            model.eval()
            held = figures(model, eval_crops, eval_photos, eval_kinds)
            print(
                f"step {step:5d}  loss photo {photo_loss.item():.3f} degradation "
                f"{kind_loss.item():.3f}  held-out acc photo {held['photo_accuracy']:.3f} "
                f"degradation {held['degradation_accuracy']:.3f}  "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )

    model.eval()
    held = figures(model, eval_crops, eval_photos, eval_kinds)
    scale = content_scale(model, held_out_regions, held_out_generator)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    description = {
        "network": "gan_superres.features.SRFeatures",
        "channels": list(CHANNELS),
        "convs_per_block": CONVS_PER_BLOCK,
        "photos": names,
        "degradations": list(DEGRADATIONS),
        "content_scale": scale["content_scale"],
        "figures": {key: float(f"{value:.4g}") for key, value in {**held, **scale}.items()},
        "training": {
            "crop": CROP,
            "batch_size": BATCH_SIZE,
            "steps": args.steps,
            "learning_rate": LEARNING_RATE,
            "weight_decay": WEIGHT_DECAY,
            "objective": "photo_weight * CE(photo) + CE(degradation), heads on log(pooled + "
            f"{HEAD_EPSILON})",
            "photo_weight": PHOTO_WEIGHT,
            "held_out_fraction": HELD_OUT,
            "seed": SEED,
            "threads": THREADS,
        },
        "torch": torch.__version__,
    }
    # One key: safetensors writes metadata keys in no fixed order, which would change the hash.
    metadata = {SR_FEATURES_METADATA_KEY: json.dumps(description, sort_keys=True)}
    save_file(state, str(args.out), metadata=metadata)

    print(
        f"held-out crops ({len(eval_crops)}, right quarter of each photo): photo accuracy "
        f"{held['photo_accuracy']:.4f}, degradation accuracy {held['degradation_accuracy']:.4f}, "
        f"sharp vs degraded {held['sharp_vs_degraded_accuracy']:.4f}"
    )
    print(
        f"content_scale {scale['content_scale']} = sqrt(pixel MSE {scale['pixel_mse_x4']:.5f} / "
        f"feature MSE {scale['feature_mse_x4']:.5f}) on 96x96 crops vs bicubic x4; white "
        f"noise of the same pixel MSE: content MSE {scale['content_mse_noise']:.5f}"
    )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    print(f"sha256 {file_sha256(args.out)}")
    print(f"took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
