"""training.keep_freed_memory: glibc keeps the memory a step frees for the next step."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

import gancore._allocator as allocator
import gancore._train as train_module
from gancore._train import train
from tests.conftest import load

# Four 4 MiB buffers written and freed, over and over: the shape of a training step's
# activations. Left to its dynamic thresholds, whether glibc returns them to the system depends on
# the heap's layout, which differs from process to process (seen here: 4064 faults per round in
# one run, 0 in the next). The baseline is made deterministic with glibc's documented static
# thresholds (128 KiB each): every 4 MiB block is then mmapped and faulted in anew, 1024 pages of
# 4 KiB each. keep_freed_memory() called after that must override it.
ROUNDS = """
import ctypes, resource, sys, torch
from gancore._allocator import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, keep_freed_memory
libc = ctypes.CDLL("libc.so.6")
assert libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1
assert libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024) == 1
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def round_():
    xs = [torch.ones(1024 * 1024) for _ in range(4)]
    del xs
for _ in range(3):
    round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)


def _faults_per_round(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip())


@glibc
def test_kept_memory_is_not_faulted_back_in() -> None:
    """With blocks handed back to the system every round re-faults its 16 MiB (4096 pages of
    4 KiB, give or take a few); after keep_freed_memory() no page is faulted again."""
    assert _faults_per_round("static") >= 4000
    assert _faults_per_round("keep") < 10


def test_does_nothing_elsewhere_than_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    """On another C library (macOS, musl) the call is a no-op that says so."""
    monkeypatch.setattr(allocator, "_applied", False)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert allocator.keep_freed_memory() is False


@pytest.mark.parametrize("keep", [True, False])
def test_train_applies_it_unless_switched_off(
    keep: bool, toy_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train() sets the thresholds once at the start when training.keep_freed_memory is true
    (the default), and leaves the allocator alone when it is false."""
    calls: list[int] = []
    monkeypatch.setattr(train_module, "keep_freed_memory", lambda: calls.append(1) or True)
    overrides = ["run.steps=1"] + ([] if keep else ["training.keep_freed_memory=false"])
    config = load(toy_config, *overrides)
    assert config.training.keep_freed_memory is keep
    train(config, tmp_path / "run", progress=False)
    assert calls == ([1] if keep else [])
