"""Train the bundled ``digits-classifier`` feature extractor and write its weights.

    python scripts/train_digits_extractor.py [--out gancore/assets/digits_classifier.safetensors]

Trains :class:`gancore.metrics.extractors.DigitsClassifier` on the training part of
:func:`gancore.metrics.extractors.load_digits_split` (80 % of scikit-learn's 1,797 digits,
stratified, seed 0) and reports its accuracy on the other 20 %. CPU only, one thread, fixed seeds
and deterministic algorithms, so the same machine and torch version give the same bytes (the sha256
of the file is printed; gancore/metrics/extractors.py records it). Takes about a minute.

Training: AdamW (lr 2e-3, weight decay 1e-4), batch 64, 60 epochs, cosine learning-rate decay,
cross-entropy. Augmentation: each training image is shifted by a random whole number of pixels in
[-1, 1] along each axis at 16x16 (blank pixels = -1 fill the border), so features do not hinge on
exact centring, which generated digits do not always have.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from gancore.metrics.extractors import (
    DigitsClassifier,
    bundled_digits_weights,
    file_sha256,
    load_digits_split,
    prepare_images,
)

EPOCHS = 60
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
SEED = 0


def to_input(images: torch.Tensor) -> torch.Tensor:
    """8x8 digits -> the classifier's 16x16 input (same filter as its own resize)."""
    return prepare_images(images, input_size=16, channels=1, antialias=True, who="train")


def random_shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by an integer in [-1, 1] pixels along each axis, filling with -1."""
    n, _, h, w = images.shape
    padded = F.pad(images, (1, 1, 1, 1), value=-1.0)
    offsets = torch.randint(0, 3, (n, 2), generator=generator)
    return torch.stack(
        [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets.tolist())]
    )


def accuracy(model: DigitsClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        _, logits = model.features_and_logits(images)
    return float((logits.argmax(dim=1) == labels).double().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=bundled_digits_weights())
    args = parser.parse_args()

    started = time.perf_counter()
    torch.set_num_threads(1)  # thread count changes reduction order, hence the bytes
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)

    train_images, train_labels, test_images, test_labels = load_digits_split()
    train_inputs = to_input(train_images)
    model = DigitsClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = math.ceil(len(train_labels) / BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS * steps_per_epoch)

    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(train_labels), generator=generator)
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            inputs = random_shift(train_inputs[rows], generator)
            _, logits = model.features_and_logits(inputs)
            loss = F.cross_entropy(logits, train_labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if (epoch + 1) % 10 == 0:
            model.eval()
            print(
                f"epoch {epoch + 1:3d}  loss {loss.item():.4f}  "
                f"train acc {accuracy(model, train_images, train_labels):.4f}"
            )

    model.eval()
    test_accuracy = accuracy(model, test_images, test_labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(
        state,
        str(args.out),
        # One key: safetensors writes metadata keys in no fixed order, which would change the hash.
        metadata={
            "gancore": json.dumps(
                {
                    "network": "gancore.metrics.extractors.DigitsClassifier",
                    "heldout_accuracy": round(test_accuracy, 4),
                    "split": "load_digits_split(seed=0, test_fraction=0.2)",
                    "torch": torch.__version__,
                },
                sort_keys=True,
            )
        },
    )
    print(f"held-out accuracy {test_accuracy:.4f} on {len(test_labels)} images")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    print(f"sha256 {file_sha256(args.out)}")
    print(f"took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
