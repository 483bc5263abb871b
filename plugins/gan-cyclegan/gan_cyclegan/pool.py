"""The image history pool: critics also see generated images from earlier steps.

Shrivastava et al. 2017 ("Learning from Simulated and Unsupervised Images through Adversarial
Training", Sec. 2.3) update the critic with a history of refined images; Zhu et al. 2017 (CycleGAN,
Sec. 4) keep a buffer of 50 generated images per direction. While it fills, every new image is
stored and passed on. Once full, for each new image: with probability 1/2 the critic gets a random
stored image, which the new one replaces in the buffer; otherwise it gets the new image and the
buffer is unchanged.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["ImagePool"]


class ImagePool:
    """A buffer of up to ``size`` images ``[C, H, W]``; ``size = 0`` passes batches through.

    Random draws come from torch's global CPU generator, the process stream that gancore seeds per
    process and stores in checkpoints, so a resumed run draws what an uninterrupted one would. The
    contents travel in checkpoints through :meth:`state_dict` / :meth:`load_state_dict`.
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"image pool: 'size' must be >= 0 (got {size})")
        self.size = size
        self.images: torch.Tensor | None = None  # [count, C, H, W], detached
        self.count = 0

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The batch ``[N, C, H, W]`` the critic should see in place of ``images``."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None or self.images.shape[1:] != images.shape[1:]:
            self.images = images.new_empty((self.size, *images.shape[1:]))
            self.count = 0
        elif self.images.device != images.device or self.images.dtype != images.dtype:
            self.images = self.images.to(device=images.device, dtype=images.dtype)
        out = []
        for image in images:
            if self.count < self.size:  # filling: store it and return it
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif float(torch.rand(())) < 0.5:  # swap: return a stored image, keep the new one
                slot = int(torch.randint(self.size, ()))
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """The stored images (on the CPU) and their count."""
        stored = self.images[: self.count] if self.images is not None else torch.zeros(0)
        return {"images": stored.detach().cpu().clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the images move to the device of the next query."""
        count = int(state["count"])
        if count > self.size:
            raise ValueError(
                f"image pool: the state holds {count} images, the pool only {self.size}"
            )
        stored = state["images"]
        if count == 0:
            self.images, self.count = None, 0
            return
        self.images = stored.new_empty((self.size, *stored.shape[1:]))
        self.images[:count] = stored[:count]
        self.count = count
