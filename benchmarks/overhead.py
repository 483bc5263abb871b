"""Framework overhead: gancore's training loop against a minimal hand-written PyTorch loop.

    python benchmarks/overhead.py [--quick] [--cases mlp dcgan32 stylegan2] [--repeats 5]

Both sides train the same generator, critic, loss, regularizer, batch size and seed for the same
number of steps; the hand-written loop (:func:`hand_train`, below) does exactly the math gancore's
loop does for these recipes, in the same order and with the same random draws:

- networks built after ``torch.manual_seed(seed)``, the generator first, then the critic;
- the data order of :class:`gancore._data.BatchPlan`: epoch ``e`` is
  ``randperm(N, generator=seed * 1_000_003 + e)``, batch ``b`` is its positions
  ``[b*B, (b+1)*B)`` of the concatenated epochs;
- latents of critic step ``k`` of iteration ``i`` from a generator seeded
  ``splitmix64(seed, 0, i, k, 0)``, of the generator step from ``splitmix64(seed, 1, i, 0, 0)``;
- the global RNG (style mixing, noise inputs) seeded ``splitmix64(seed, 0, 7) % 2**31`` after the
  networks are built, as gancore seeds each process;
- critic step: ``D(real)`` then ``D(G(z))`` (``G`` under ``no_grad``), the non-saturating loss plus
  R1 when it runs every step, Adam step; lazy R1 every ``k`` critic updates as a separate step on
  ``k * penalty`` with Adam's lr and betas corrected by ``c = k / (k + 1)`` (StyleGAN2);
- generator step: critic frozen, ``softplus(-D(G(z))).mean()``, Adam step.

The cases: ``mlp`` (the ring of 8 Gaussians, the ``examples/ring-gan.toml`` networks and batch),
``mlp-tiny`` (3x8 MLPs, batch 64: the step is almost all loop, so the loop's own cost shows),
``dcgan32`` (DCGAN on the digits upsampled to 32x32, lazy R1), ``stylegan2`` (a small StyleGAN2 at
16x16 from the gan-stylegan plugin, lazy R1; skipped with a message when the plugin is missing).
gancore runs with ``log_every`` = 100, samples and a checkpoint only at the end (after the timed
steps), no metrics. ``--allocator`` sets glibc's allocator the same way for both sides: ``keep``
(the default, as ``training.keep_freed_memory`` does in gancore: freed memory stays in the
process) or ``system`` (glibc's own thresholds, which return large freed blocks to the system and
fault them back in every step).

What is measured: each run is a fresh Python process (one thread unless ``--threads``). The time
of a step is the time between consecutive calls of the dataset's ``get_batch`` (the first thing
each iteration does, on both sides), so both loops are timed by the same clock at the same place;
the first ``--warmup`` steps are dropped. Each run reports its median step time and its mean (the
mean includes the log steps), in wall time and in process CPU time (less sensitive to other jobs
on a shared machine), and its minor page faults per step; a case's figure is the median over
``--repeats`` runs. Two estimates less sensitive to other jobs come with the ratio of medians: the
ratio of each side's fastest run (other load only ever adds time) and the median of the ratios of
the runs of one repeat (run back to back, so under the same load). Runs of the
two sides alternate (gancore, hand, hand, gancore, ...) so that drift in the machine's load
cancels. Options (``bf16``, ``compile``) are timed the same way against eager float32 gancore;
compiling is part of their warm-up. Peak memory is ``ru_maxrss`` of the process at the start of the last step (before
gancore writes its final samples and checkpoint). Each run also reports a SHA-256 digest of the
trained weights: equal digests mean bit-identical weights.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _machine import machine as shared_machine
from torch import nn

DEFAULT_OUT = Path("benchmarks/results/overhead.json")
LOG_EVERY = 100

# -------------------------------------------------------------------------------------------------
# The cases: one TOML for gancore, one builder for the hand-written loop, the same numbers.
# -------------------------------------------------------------------------------------------------

CASES: dict[str, dict[str, Any]] = {
    "mlp": {
        "title": "2-D MLP GAN (ring, 3x128 MLPs, batch 256)",
        "data": '[data]\nname = "toy2d"\nmixture = "ring"\n',
        "generator": '[generator]\nname = "mlp"\nlatent_dim = 2\nhidden = 128\n',
        "critic": '[critic]\nname = "mlp"\nhidden = 128\n',
        "hidden": 128,
        "batch_size": 256,
        "lr": 1e-3,
        "betas": (0.5, 0.999),
        "r1": None,  # (gamma, interval)
        "steps": 400,
        "warmup": 50,
    },
    "mlp-tiny": {
        "title": "2-D MLP GAN, tiny (3x8 MLPs, batch 64): the loop's own cost dominates",
        "data": '[data]\nname = "toy2d"\nmixture = "ring"\n',
        "generator": '[generator]\nname = "mlp"\nlatent_dim = 2\nhidden = 8\n',
        "critic": '[critic]\nname = "mlp"\nhidden = 8\n',
        "hidden": 8,
        "batch_size": 64,
        "lr": 1e-3,
        "betas": (0.5, 0.999),
        "r1": None,
        "steps": 600,
        "warmup": 100,
    },
    "dcgan32": {
        "title": "DCGAN 32x32 (digits, channels 32, batch 64, lazy R1 every 4)",
        "data": '[data]\nname = "digits"\nresolution = 32\n',
        "generator": '[generator]\nname = "dcgan"\nlatent_dim = 64\nchannels = 32\n',
        "critic": '[critic]\nname = "dcgan"\nchannels = 32\n',
        "batch_size": 64,
        "lr": 2e-4,
        "betas": (0.5, 0.999),
        "r1": (0.1, 4),
        "steps": 50,
        "warmup": 10,
    },
    "stylegan2": {
        "title": "StyleGAN2 16x16 (digits, channel_max 32, batch 32, lazy R1 every 16)",
        "data": '[data]\nname = "digits"\nresolution = 16\n',
        "generator": (
            '[generator]\nname = "stylegan2"\nlatent_dim = 64\nstyle_dim = 64\n'
            "mapping_depth = 2\nchannel_base = 512\nchannel_max = 32\n"
        ),
        "critic": '[critic]\nname = "stylegan2"\nchannel_base = 512\nchannel_max = 32\n',
        "batch_size": 32,
        "lr": 0.0025,
        "betas": (0.0, 0.99),
        "r1": (0.05, 16),
        "steps": 20,
        "warmup": 4,
    },
}


def case_toml(case: str, steps: int, seed: int = 0) -> str:
    """The gancore run file of ``case``."""
    spec = CASES[case]
    betas = ", ".join(repr(float(b)) for b in spec["betas"])
    text = f'[run]\nname = "overhead-{case}"\nseed = {seed}\nsteps = {steps}\n\n'
    text += spec["data"] + "\n" + spec["generator"] + "\n" + spec["critic"] + "\n"
    text += '[loss]\nname = "non-saturating"\n\n'
    if spec["r1"] is not None:
        gamma, interval = spec["r1"]
        text += f'[[regularizers]]\nname = "r1"\ngamma = {gamma}\ninterval = {interval}\n\n'
    for player in ("generator", "critic"):
        text += f'[optimizers.{player}]\nname = "adam"\nlr = {spec["lr"]}\nbetas = [{betas}]\n\n'
    text += (
        f"[training]\nbatch_size = {spec['batch_size']}\nlog_every = {LOG_EVERY}\n"
        "sample_every = 0\ncheckpoint_every = 0\nnum_samples = 16\n"
        # run_worker sets the allocator for both sides (--allocator); train() leaves it alone.
        "keep_freed_memory = false\n"
    )
    return text


def stylegan_available() -> str | None:
    """``None`` when gan-stylegan is installed and registers ``stylegan2``; else the reason."""
    try:
        from gan_stylegan import critics, generators  # noqa: F401
    except ImportError as exc:
        return f"gan-stylegan is not installed ({exc})"
    if not hasattr(generators, "build_stylegan2_generator"):
        return "gan-stylegan does not provide a stylegan2 generator yet"
    return None


def build_case(case: str, seed: int = 0) -> tuple[Any, nn.Module, nn.Module]:
    """``(dataset, generator, critic)`` of ``case``, built directly (no registry, no config),
    in gancore's order: seed, dataset, generator, critic."""
    from gancore._task import BuildContext

    torch.manual_seed(seed)
    if case.startswith("mlp"):
        from gancore.builtin.datasets import Toy2dDataset, Toy2dOptions
        from gancore.builtin.networks import MLPCritic, MLPGenerator

        hidden = CASES[case]["hidden"]
        dataset: Any = Toy2dDataset(Toy2dOptions(mixture="ring"))
        generator: nn.Module = MLPGenerator(2, 2, hidden, 3, "relu")
        critic: nn.Module = MLPCritic(2, hidden, 3, "relu")
        return dataset, generator, critic
    from gancore.builtin.datasets import DigitsDataset, DigitsOptions

    if case == "dcgan32":
        from gancore.builtin.networks import (
            DCGANCriticOptions,
            DCGANGeneratorOptions,
            build_dcgan_critic,
            build_dcgan_generator,
        )

        dataset = DigitsDataset(DigitsOptions(resolution=32))
        context = BuildContext(data_shape=(1, 32, 32))
        generator = build_dcgan_generator(
            DCGANGeneratorOptions(latent_dim=64, channels=32), context
        )
        critic = build_dcgan_critic(DCGANCriticOptions(channels=32), context)
        return dataset, generator, critic
    if case == "stylegan2":
        from gan_stylegan import critics, generators

        dataset = DigitsDataset(DigitsOptions(resolution=16))
        context = BuildContext(data_shape=(1, 16, 16))
        generator = generators.build_stylegan2_generator(
            generators.StyleGAN2GeneratorOptions(
                latent_dim=64, style_dim=64, mapping_depth=2, channel_base=512, channel_max=32
            ),
            context,
        )
        critic = critics.build_stylegan2_critic(
            critics.StyleGAN2CriticOptions(channel_base=512, channel_max=32), context
        )
        return dataset, generator, critic
    raise ValueError(f"unknown case {case!r}; known: {', '.join(CASES)}")


# -------------------------------------------------------------------------------------------------
# The hand-written loop
# -------------------------------------------------------------------------------------------------


def splitmix(*parts: int) -> int:
    """A 63-bit seed from integers: splitmix64 over the parts (as gancore mixes its seeds)."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (part & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x & 0x7FFFFFFFFFFFFFFF


def r1_penalty(critic: nn.Module, real: torch.Tensor, gamma: float) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``gamma / 2 * mean_n ||grad_x D(x_n)||^2`` at real ``x``."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return 0.5 * gamma * grad.square().sum(dim=tuple(range(1, grad.ndim))).mean()


def hand_train(
    dataset: Any,
    generator: nn.Module,
    critic: nn.Module,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    betas: tuple[float, float],
    r1: tuple[float, int] | None = None,
    seed: int = 0,
) -> None:
    """Non-saturating GAN training of ``generator`` and ``critic`` for ``steps`` iterations,
    the minimal loop that does gancore's math (see the module docstring)."""
    gamma, interval = r1 if r1 is not None else (0.0, 0)
    lazy = interval > 1
    c = interval / (interval + 1) if lazy else 1.0  # StyleGAN2's lazy-regularization correction
    g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    d_opt = torch.optim.Adam(critic.parameters(), lr=lr * c, betas=(betas[0] ** c, betas[1] ** c))
    process_seed = splitmix(seed, 0, 7) % 2**31  # the global stream: style mixing, noise
    torch.manual_seed(process_seed)
    latent_dim = generator.latent_dim
    size = len(dataset)
    epoch, order = -1, torch.empty(0, dtype=torch.long)
    position = 0
    critic_params = list(critic.parameters())

    def latents(phase: int, iteration: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(splitmix(seed, phase, iteration, 0, 0))
        return torch.randn(batch_size, latent_dim, generator=gen)

    for iteration in range(steps):
        # Next batch of the seeded epoch permutations.
        indices = []
        while len(indices) < batch_size:
            e, offset = divmod(position, size)
            if e != epoch:
                epoch = e
                order = torch.randperm(
                    size, generator=torch.Generator().manual_seed(seed * 1_000_003 + e)
                )
            take = min(batch_size - len(indices), size - offset)
            indices.extend(order[offset : offset + take].tolist())
            position += take
        real = dataset.get_batch(indices)["x"]

        # Critic step.
        z = latents(0, iteration)
        with torch.no_grad():
            fake = generator(z)
        d_opt.zero_grad(set_to_none=True)
        real_scores = critic(real)
        fake_scores = critic(fake)
        loss = F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
        if interval == 1:
            loss = loss + r1_penalty(critic, real, gamma)
        loss.backward()
        d_opt.step()
        if lazy and (iteration + 1) % interval == 0:
            d_opt.zero_grad(set_to_none=True)
            (r1_penalty(critic, real, gamma) * interval).backward()
            d_opt.step()

        # Generator step, critic frozen.
        z = latents(1, iteration)
        g_opt.zero_grad(set_to_none=True)
        for p in critic_params:
            p.requires_grad_(False)
        loss = F.softplus(-critic(generator(z))).mean()
        loss.backward()
        for p in critic_params:
            p.requires_grad_(True)
        g_opt.step()


def gancore_train(
    case: str, steps: int, run_dir: Path, seed: int = 0, overrides: tuple[str, ...] = ()
) -> tuple[nn.Module, nn.Module]:
    """Train ``case`` through ``gancore.train``; the trained generator and critic.
    ``overrides`` are ``key=value`` settings as for ``gan train --set``."""
    import tomllib

    import gancore
    from gancore._config import apply_overrides

    document = apply_overrides(tomllib.loads(case_toml(case, steps, seed)), overrides)
    config = gancore.parse_config(document, gancore.get_registry(), source=f"<overhead {case}>")
    result = gancore.train(config, run_dir, progress=False)
    return result.generators["generator"], result.critics["critic"]


def weights_digest(*modules: nn.Module) -> str:
    """SHA-256 over every parameter and buffer, in order: equal digests = identical weights."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# -------------------------------------------------------------------------------------------------
# One run in this process
# -------------------------------------------------------------------------------------------------


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _callgrind(flag: str) -> None:
    """Switch callgrind's instruction counting on or off for this process (run under
    ``valgrind --tool=callgrind --instr-atstart=no``; see overhead_instructions.py)."""
    subprocess.run(
        ["callgrind_control", "-i", flag, str(os.getpid())], check=True, capture_output=True
    )


def _instrument(dataset_class: type, steps: int) -> dict[str, Any]:
    """Wrap ``dataset_class.get_batch`` to stamp the time of each call and the peak memory at
    the last one. With ``OVERHEAD_INSTRUCTION_WINDOW=a,b`` in the environment, callgrind counts
    instructions from the ``a``-th call to the ``b``-th: iterations ``a .. b-1`` exactly."""
    record: dict[str, Any] = {"stamps": [], "cpu": [], "faults": [], "peak_rss_mb": None}
    original: Callable[..., Any] = dataset_class.get_batch  # type: ignore[attr-defined]
    window = os.environ.get("OVERHEAD_INSTRUCTION_WINDOW")
    first, last = (int(x) for x in window.split(",")) if window else (-1, -1)

    def get_batch(self: Any, indices: Any) -> Any:
        stamps = record["stamps"]
        if len(stamps) + 1 == first:
            _callgrind("on")
        if len(stamps) + 1 == last:
            _callgrind("off")
        stamps.append(time.perf_counter())
        record["cpu"].append(time.process_time())
        record["faults"].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
        if len(stamps) == steps:
            record["peak_rss_mb"] = _max_rss_mb()
        return original(self, indices)

    dataset_class.get_batch = get_batch  # type: ignore[attr-defined]
    return record


def run_worker(
    side: str,
    case: str,
    steps: int,
    warmup: int,
    overrides: tuple[str, ...] = (),
    allocator: str = "keep",
) -> dict[str, Any]:
    import gancore  # noqa: F401  (imported before the clock, on both sides)
    from gancore._allocator import keep_freed_memory

    if allocator == "keep":  # gancore's default (training.keep_freed_memory), for both sides
        keep_freed_memory()

    dataset, generator, critic = build_case(case)
    record = _instrument(type(dataset), steps)
    rss_before = _max_rss_mb()
    spec = CASES[case]
    started = time.perf_counter()
    if side == "hand":
        hand_train(
            dataset,
            generator,
            critic,
            steps=steps,
            batch_size=spec["batch_size"],
            lr=spec["lr"],
            betas=spec["betas"],
            r1=spec["r1"],
        )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            generator, critic = gancore_train(case, steps, Path(tmp) / "run", overrides=overrides)
    total = time.perf_counter() - started
    stamps = record["stamps"]
    step_times = [b - a for a, b in itertools.pairwise(stamps)][warmup:]
    cpu = record["cpu"]
    cpu_times = [b - a for a, b in itertools.pairwise(cpu)][warmup:]
    faults = [b - a for a, b in itertools.pairwise(record["faults"])][warmup:]
    return {
        "side": side,
        "case": case,
        "steps": steps,
        "warmup": warmup,
        "median_step_ms": 1000 * statistics.median(step_times),
        "mean_step_ms": 1000 * statistics.fmean(step_times),
        "median_cpu_ms": 1000 * statistics.median(cpu_times),
        "mean_cpu_ms": 1000 * statistics.fmean(cpu_times),
        "minor_faults_per_step": statistics.fmean(faults),
        "first_steps_s": stamps[min(warmup, len(stamps) - 1)] - started,
        "total_s": total,
        "peak_rss_mb": record["peak_rss_mb"],
        "rss_before_mb": rss_before,
        "weights_sha256": weights_digest(generator, critic),
    }


# -------------------------------------------------------------------------------------------------
# The driver
# -------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """This run's machine and software (benchmarks/_machine.py), with gancore's plugins."""
    return shared_machine(None, "gan-stylegan")


# Options measured against eager float32 gancore: the --set overrides of each.
OPTIONS: dict[str, tuple[str, ...]] = {
    "bf16": ("training.precision='bf16'",),
    "compile": ("training.compile=true",),
}


def _spawn(
    side: str,
    case: str,
    steps: int,
    warmup: int,
    threads: int,
    overrides: tuple[str, ...] = (),
    allocator: str = "keep",
) -> dict[str, Any]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env.setdefault("GANCORE_DISABLE_PLUGINS", "gancore-test-broken,gancore-test-collide")
    command = [sys.executable, __file__, "--worker", side, "--cases", case]
    command += ["--steps", str(steps), "--warmup", str(warmup), "--threads", str(threads)]
    command += ["--allocator", allocator]
    for override in overrides:
        command += ["--set", override]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"side": side, "case": case, "error": lines[-1] if lines else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _side_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"] if runs else "no runs"}
    return {
        "median_step_ms": statistics.median(r["median_step_ms"] for r in ok),
        "mean_step_ms": statistics.median(r["mean_step_ms"] for r in ok),
        "median_cpu_ms": statistics.median(r["median_cpu_ms"] for r in ok),
        "mean_cpu_ms": statistics.median(r["mean_cpu_ms"] for r in ok),
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in ok),
        "minor_faults_per_step": statistics.median(r["minor_faults_per_step"] for r in ok),
        "warmup_s": statistics.median(r["first_steps_s"] for r in ok),
        "runs_median_step_ms": [round(r["median_step_ms"], 4) for r in ok],
        "runs_median_cpu_ms": [round(r["median_cpu_ms"], 4) for r in ok],
    }


def summarize(case: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    sides = sorted({r["side"] for r in runs}, key=lambda x: (x != "gancore", x != "hand", x))
    out: dict[str, Any] = {"case": case, "title": CASES[case]["title"]}
    for side in sides:
        out[side] = _side_summary([r for r in runs if r["side"] == side])
    g, h = out["gancore"], out["hand"]
    out["ratio_median"] = g["median_step_ms"] / h["median_step_ms"]
    out["ratio_mean"] = g["mean_step_ms"] / h["mean_step_ms"]
    out["ratio_median_cpu"] = g["median_cpu_ms"] / h["median_cpu_ms"]
    out["ratio_mean_cpu"] = g["mean_cpu_ms"] / h["mean_cpu_ms"]
    out["ratio_peak_rss"] = g["peak_rss_mb"] / h["peak_rss_mb"]
    # Less sensitive to other jobs than the ratio of medians: each side's fastest run (other load
    # only ever adds time), and the median of the ratios of the two sides' runs of one repeat
    # (run next to each other, so they saw the same load).
    g_runs = [r["median_step_ms"] for r in runs if r["side"] == "gancore" and "error" not in r]
    h_runs = [r["median_step_ms"] for r in runs if r["side"] == "hand" and "error" not in r]
    out["ratio_min"] = min(g_runs) / min(h_runs)
    out["ratio_paired_median"] = statistics.median(
        a / b for a, b in zip(g_runs, h_runs, strict=True)
    )
    digests = {r["weights_sha256"] for r in runs if r["side"] in ("gancore", "hand")}
    out["identical_weights"] = len(digests) == 1
    out["weights_sha256"] = sorted(digests)
    for option in OPTIONS:
        o = out.get(option)
        if o is not None and "error" not in o:
            o["speedup_median"] = g["median_step_ms"] / o["median_step_ms"]
            o["speedup_median_cpu"] = g["median_cpu_ms"] / o["median_cpu_ms"]
    return out


def table(summaries: list[dict[str, Any]]) -> str:
    header = (
        f"{'case':<9} {'gancore ms':>10} {'hand ms':>8} {'ratio':>6} {'ratio cpu':>9} "
        f"{'ratio mean':>10} {'ratio min':>9} {'ratio paired':>12} {'gancore MB':>10} "
        f"{'hand MB':>8} {'faults/step':>11} {'same weights':>12}"
    )
    lines = [header, "-" * len(header)]
    for s in summaries:
        g, h = s["gancore"], s["hand"]
        faults = f"{g['minor_faults_per_step']:.1f}/{h['minor_faults_per_step']:.1f}"
        lines.append(
            f"{s['case']:<9} {g['median_step_ms']:>10.3f} {h['median_step_ms']:>8.3f} "
            f"{s['ratio_median']:>6.3f} {s['ratio_median_cpu']:>9.3f} {s['ratio_mean']:>10.3f} "
            f"{s['ratio_min']:>9.3f} {s['ratio_paired_median']:>12.3f} "
            f"{g['peak_rss_mb']:>10.0f} {h['peak_rss_mb']:>8.0f} {faults:>11} "
            f"{'yes' if s['identical_weights'] else 'NO':>12}"
        )
    rows = [(s, o) for s in summaries for o in OPTIONS if o in s]
    if rows:
        header = (
            f"\n{'case':<9} {'option':<8} {'ms/step':>8} {'eager ms':>8} {'speedup':>7} "
            f"{'speedup cpu':>11} {'warm-up s':>9}"
        )
        lines += [header, "-" * (len(header) - 1)]
        for s, option in rows:
            o, g = s[option], s["gancore"]
            if "error" in o:
                lines.append(f"{s['case']:<9} {option:<8} failed: {o['error'][:90]}")
                continue
            lines.append(
                f"{s['case']:<9} {option:<8} {o['median_step_ms']:>8.3f} "
                f"{g['median_step_ms']:>8.3f} {o['speedup_median']:>7.3f} "
                f"{o['speedup_median_cpu']:>11.3f} {o['warmup_s']:>9.1f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=5, help="runs per side and case")
    parser.add_argument("--steps", type=int, help="steps per run (default: per case)")
    parser.add_argument("--warmup", type=int, help="steps dropped per run (default: per case)")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per run")
    parser.add_argument(
        "--options",
        nargs="*",
        default=list(OPTIONS),
        choices=list(OPTIONS),
        help="gancore options timed against eager float32 gancore",
    )
    parser.add_argument(
        "--option-cases", nargs="*", default=["mlp", "dcgan32"], help="cases bf16 runs on"
    )
    parser.add_argument(
        "--compile-cases",
        nargs="*",
        default=["mlp"],
        help="cases compile runs on (each run compiles afresh: minutes on a CPU)",
    )
    parser.add_argument("--option-repeats", type=int, default=2, help="runs per option and case")
    parser.add_argument(
        "--allocator",
        choices=["keep", "system"],
        default="keep",
        help="both sides: keep freed memory (gancore's default, training.keep_freed_memory) "
        "or leave glibc's allocator as it is",
    )
    parser.add_argument("--quick", action="store_true", help="2 repeats, a quarter of the steps")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        torch.set_num_threads(args.threads)
        case = args.cases[0]
        side = "gancore" if args.worker in OPTIONS else args.worker
        result = run_worker(side, case, args.steps, args.warmup, tuple(args.set), args.allocator)
        result["side"] = args.worker
        print(json.dumps(result))
        return

    if args.quick:
        args.repeats, args.option_repeats = 2, 1
        args.option_cases = [c for c in args.option_cases if c == "mlp"]
    load_at_start = list(os.getloadavg())
    summaries, skipped = [], []
    for case in args.cases:
        if case == "stylegan2" and (reason := stylegan_available()) is not None:
            print(f"skipping stylegan2: {reason}", file=sys.stderr)
            skipped.append({"case": case, "reason": reason})
            continue
        spec = CASES[case]
        steps = args.steps or (spec["steps"] // 4 if args.quick else spec["steps"])
        warmup = args.warmup if args.warmup is not None else min(spec["warmup"], steps // 4)
        options = [
            o
            for o in args.options
            if case in (args.compile_cases if o == "compile" else args.option_cases)
        ]
        runs = []
        for repeat in range(args.repeats):
            # gancore, hand, hand, gancore, ...: a linear drift in load cancels.
            order = ["gancore", "hand"] if repeat % 2 == 0 else ["hand", "gancore"]
            if repeat < args.option_repeats:
                order += options
            for side in order:
                print(f"{case}: {side} run {repeat + 1}/{args.repeats}", file=sys.stderr)
                overrides = OPTIONS.get(side, ())
                runs.append(
                    _spawn(side, case, steps, warmup, args.threads, overrides, args.allocator)
                )
        failed = [r for r in runs if "error" in r and r["side"] in ("gancore", "hand")]
        if failed:
            raise SystemExit(f"{case}: {failed[0]['side']} failed: {failed[0]['error']}")
        summary = summarize(case, runs)
        summary.update(steps=steps, warmup=warmup, runs=runs)
        summaries.append(summary)
    print(table(summaries))
    for s in skipped:
        print(f"skipped {s['case']}: {s['reason']}")
    report = {
        "machine": {**machine(), "load_average_at_start": load_at_start},
        "settings": {
            "repeats": args.repeats,
            "option_repeats": args.option_repeats,
            "threads": args.threads,
            "log_every": LOG_EVERY,
            "timing": "time between consecutive get_batch calls (wall: perf_counter, cpu: "
            "process_time); medians over steps after warm-up, then the median over repeats; "
            "sides interleaved",
            "memory": "ru_maxrss at the start of the last step, fresh process per run",
            "faults": "minor page faults per step (ru_minflt), mean over steps after warm-up",
            "allocator": args.allocator,
            "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES"),
        },
        "results": summaries,
        "skipped": skipped,
        "command": " ".join(["python", "benchmarks/overhead.py", *(argv or sys.argv[1:])]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
