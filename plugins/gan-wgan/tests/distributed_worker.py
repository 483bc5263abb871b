"""Worker for the two-process test: trains a config and saves this process's live weights.

Run as ``torchrun --nproc_per_node 2 distributed_worker.py CONFIG OUT``; writes
``OUT/rank<r>.safetensors`` (generator and critic state, buffers included) and the run to
``OUT/run``.
"""

import os
import sys
from pathlib import Path

from safetensors.torch import save_file

import gancore


def main() -> None:
    config_path, out = sys.argv[1], Path(sys.argv[2])
    config = gancore.load_config(config_path)
    result = gancore.train(config, out / "run", progress=False)
    weights = {
        f"{group}.{name}.{key}": tensor.detach().contiguous().clone()
        for group, modules in (("generators", result.generators), ("critics", result.critics))
        for name, module in modules.items()
        for key, tensor in module.state_dict().items()
    }
    if not weights:
        raise SystemExit("the run returned no networks")
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / f"rank{os.environ.get('RANK', '0')}.safetensors"))


if __name__ == "__main__":
    main()
