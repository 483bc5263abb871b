"""gan-improved in two gloo processes: both ranks end identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import gancore.testing as gt

TOY = """
[run]
name = "two"
seed = 3
steps = 4

[data]
name = "toy2d"
size = 256

[generator]
name = "mlp"
latent_dim = 2
hidden = 16
depth = 2

{critic}

{regularizers}
{task}

[training]
batch_size = 16
log_every = 1
sample_every = 0
checkpoint_every = 0
"""

CASES = {
    "pacgan": (
        '[critic]\nname = "pacgan"\npack = 4\ninner = {name = "mlp", hidden = 16, depth = 2}',
        '[[regularizers]]\nname = "r1"\ngamma = 1.0',
        "reg/r1",
    ),
    "feature-matching": (
        '[critic]\nname = "mlp"\nhidden = 16\ndepth = 2',
        '[[regularizers]]\nname = "feature-matching"\nmode = "add"',
        "reg/feature-matching",
    ),
    "minibatch-discrimination": (
        '[critic]\nname = "minibatch-discrimination"\nkernels = 8\n'
        'inner = {name = "mlp", hidden = 16, depth = 2}',
        '[[regularizers]]\nname = "historical-averaging"',
        "reg/historical-averaging",
    ),
    "unrolled": ('[critic]\nname = "mlp"\nhidden = 16\ndepth = 2', "", "loss/generator"),
}
TASKS = {"unrolled": '[task]\nname = "unrolled"\nsteps = 2'}


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_processes_end_identical(case: str, tmp_path: Path) -> None:
    """Each component trains in two processes, both ranks ending with the same weights (and
    running means), the component's value logged."""
    critic, regularizers, logged = CASES[case]
    (tmp_path / "run.toml").write_text(
        TOY.format(critic=critic, regularizers=regularizers, task=TASKS.get(case, ""))
    )
    rank0, rank1 = gt.train_processes(
        tmp_path / "run.toml",
        tmp_path / "out",
        env={"GANCORE_LOAD_PLUGINS": "gan-improved"},
        timeout=300,
    )
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    records = [
        json.loads(line)
        for line in (tmp_path / "out" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    last = [r for r in records if r["event"] == "train"][-1]
    assert last["step"] == 4
    assert logged in last
