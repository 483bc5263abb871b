"""Worker for the two-process test: trains a config and saves this process's live state.

Run as ``torchrun --nproc_per_node 2 distributed_worker.py CONFIG OUT``; writes
``OUT/rank<r>.safetensors`` (generator and critic parameters and buffers, and the path-length
regularizer's running mean as ``path-length.pl_mean``) and the run to ``OUT/run``.
"""

import os
import sys
from pathlib import Path

import torch
from gan_stylegan.regularizers import PathLength
from safetensors.torch import save_file

import gancore

seen: list[PathLength] = []
_penalty = PathLength.penalty


def _recording_penalty(
    self: PathLength, generator: torch.nn.Module, inputs: torch.Tensor
) -> torch.Tensor:
    """PathLength.penalty, remembering the instance so its running mean can be saved."""
    if self not in seen:
        seen.append(self)
    return _penalty(self, generator, inputs)


def main() -> None:
    PathLength.penalty = _recording_penalty  # type: ignore[method-assign]
    config_path, out = sys.argv[1], Path(sys.argv[2])
    config = gancore.load_config(config_path)
    result = gancore.train(config, out / "run", progress=False)
    weights = {
        f"{group}.{name}.{key}": tensor.detach().contiguous().clone()
        for group, modules in (("generators", result.generators), ("critics", result.critics))
        for name, module in modules.items()
        for key, tensor in module.state_dict().items()
    }
    (regularizer,) = seen
    weights["path-length.pl_mean"] = regularizer.pl_mean.detach().clone()
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / f"rank{os.environ.get('RANK', '0')}.safetensors"))


if __name__ == "__main__":
    main()
