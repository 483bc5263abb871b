"""The training process behind :func:`gancore.testing.train_processes`.

``python -m gancore._distributed_worker CONFIG OUT [KEY=VALUE ...]``, one per process (under
``torch.distributed.run`` for several): trains ``CONFIG`` with the overrides into ``OUT/run`` and
writes this process's final state to ``OUT/rank<r>.safetensors``: ``generators.NAME.KEY``,
``critics.NAME.KEY``, ``<group>.NAME.KEY`` for a task's other player groups, ``ema.NAME.KEY``
(state dicts, buffers included) and ``regularizers.I.KEY``
(the state of the ``I``-th ``[[regularizers]]`` entry that is a module).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

import gancore
from gancore._build import weights_group
from gancore._train import end_processes


def main(argv: list[str]) -> None:
    config_path, out, overrides = argv[0], Path(argv[1]), argv[2:]
    config = gancore.load_config(config_path, overrides)
    result = gancore.train(config, out / "run", progress=False)
    state: dict[str, torch.Tensor] = {}
    groups = {weights_group(g): m for g, m in result.players.items()}
    for group, modules in {**groups, "ema": result.ema}.items():
        for name, module in modules.items():
            for key, tensor in module.state_dict().items():
                state[f"{group}.{name}.{key}"] = tensor
    for index, (_, regularizer) in enumerate(result.regularizers):
        if isinstance(regularizer, torch.nn.Module):
            for key, tensor in regularizer.state_dict().items():
                state[f"regularizers.{index}.{key}"] = tensor
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(out / f"rank{os.environ.get('RANK', '0')}.safetensors"))
    end_processes()


if __name__ == "__main__":
    main(sys.argv[1:])
