"""Worker for the two-process test: trains a config and saves this process's live weights.

Run as ``torchrun --nproc_per_node 2 distributed_worker.py CONFIG OUT two`` or with plain python
(``... one``); writes ``OUT/<tag>-rank<r>.safetensors``.
"""

import os
import sys
from pathlib import Path

from safetensors.torch import save_file

import gancore


def main() -> None:
    config_path, out, tag = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    # Exercise both penalty paths: R1 inside the critic step (through DDP) and lazy R1 (manual
    # gradient all-reduce); two critic steps per iteration.
    config = gancore.load_config(
        config_path,
        [
            "regularizers=[{name='r1', gamma=0.5}, {name='r1', gamma=0.5, interval=2}]",
            "training.critic_steps=2",
            "run.steps=10",
        ],
    )
    result = gancore.train(config, out / f"run-{tag}", progress=False)
    weights = {
        f"{group}.{name}.{key}": tensor.detach().contiguous()
        for group, modules in (("generators", result.generators), ("critics", result.critics))
        for name, module in modules.items()
        for key, tensor in module.state_dict().items()
    }
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / f"{tag}-rank{os.environ.get('RANK', '0')}.safetensors"))


if __name__ == "__main__":
    main()
