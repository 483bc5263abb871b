"""[init]: a new run starts from another run's weights, with a report of what did not match."""

from __future__ import annotations

import copy
import json
import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import gancore
import gancore.testing
from gancore._config import InitSection, config_to_toml, parse_config
from gancore._init import InitReport, Mismatch, apply_init
from gancore._train import build_run, train

# A tiny DCGAN on 16x16 digits (the smallest size whose dcgan critic has a normalized layer) with an EMA generator; {critic} and the overrides vary per test.
BASE = """
[run]
name = "base"
seed = 1
steps = 2

[data]
name = "digits"
resolution = 16
limit = 64

[generator]
name = "dcgan"
latent_dim = 8
channels = 8
max_channels = 16

[critic]
name = "dcgan"
channels = 8
max_channels = 16

[optimizers.generator]
lr = 1e-2

[optimizers.critic]
lr = 1e-2

[training]
batch_size = 8
ema_half_life_images = 8
log_every = 1
sample_every = 0
checkpoint_every = 1
"""


def _registry() -> gancore.Registry:
    registry, _ = gancore.load_registry(entry_points=False, env={})
    return registry


def _config(*overrides: str, init: str | None = None) -> gancore.RunConfig:
    from gancore._config import apply_overrides

    document = apply_overrides(tomllib.loads(BASE + (init or "")), overrides)
    return parse_config(document, _registry())


def _groups(config: gancore.RunConfig, ema: bool = True) -> dict[str, dict[str, nn.Module]]:
    """The groups train() passes: built networks, the EMA a deep copy of the generators."""
    built = build_run(config)
    copies = {n: copy.deepcopy(m) for n, m in built.generators.items()} if ema else {}
    return {"generators": built.generators, "critics": built.critics, "ema": copies}


def _init(source: Path | str, **options: object) -> InitSection:
    return InitSection(from_=str(source), **options)  # type: ignore[arg-type]


def _flat(modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": t.clone() for n, m in modules.items() for k, t in m.state_dict().items()}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained base run: checkpoints after steps 1 and 2, with EMA weights."""
    run_dir = tmp_path_factory.mktemp("init") / "base"
    train(_config(), run_dir, progress=False)
    return run_dir


def _checkpoint_weights(run_dir: Path, step: int) -> dict[str, dict[str, torch.Tensor]]:
    folder = run_dir / "checkpoints" / f"step-{step:07d}"
    return {p.stem: load_file(str(p)) for p in folder.glob("*.safetensors")}


class TestInitSection:
    def test_from_is_the_toml_key(self) -> None:
        """`from` (a Python keyword) structures into the field `from_`, and `strict` defaults off."""
        config = _config(init='[init]\nfrom = "runs/base"\n')
        assert config.init == InitSection(from_="runs/base", strict=False)

    def test_absent_section_is_none(self) -> None:
        """Without [init] the run has no init and the resolved config shows none."""
        config = _config()
        assert config.init is None and "[init]" not in config_to_toml(config)

    def test_resolved_config_round_trips(self) -> None:
        """`gan config show` writes `from`, and what it writes parses to the same config."""
        config = _config(init='[init]\nfrom = "runs/base"\nstrict = true\ngroups = ["critics"]\n')
        text = config_to_toml(config)
        assert '[init]\nfrom = "runs/base"\nstrict = true\ngroups = [\n    "critics",\n]\n' in text
        assert parse_config(tomllib.loads(text), _registry()).init == config.init

    def test_problems_are_one_line_each(self) -> None:
        """A missing `from`, a misspelled key and a wrong type are each reported with their path."""
        with pytest.raises(gancore.ConfigError) as exc:
            _config(init="[init]\nstrcit = true\nexclude = 3\n")
        assert exc.value.problems == [
            "init.strcit: unknown key (did you mean 'strict'?); [init] accepts: from, strict, "
            "groups, exclude",
            "init.from: required key is missing (expected a string)",
            "init.exclude: expected a list of strings, got 3 (integer)",
        ]

    def test_empty_path(self) -> None:
        """An empty `from` is refused when the file is read."""
        with pytest.raises(gancore.ConfigError, match=r"init.from: 'from' must be a path"):
            _config(init='[init]\nfrom = " "\n')


class TestSources:
    def test_run_directory_uses_its_newest_checkpoint(self, base_run: Path) -> None:
        """Every tensor of the newest checkpoint loads, and the networks equal it exactly."""
        groups = _groups(_config())
        report = apply_init(_init(base_run), groups)
        assert report.source == str(base_run / "checkpoints" / "step-0000002")
        assert (report.missing, report.unexpected, report.mismatched) == ((), (), ())
        saved = _checkpoint_weights(base_run, 2)
        assert len(report.matched) == sum(len(t) for t in saved.values())
        for group, modules in groups.items():
            loaded = _flat(modules)
            assert loaded.keys() == saved[group].keys()
            assert all(torch.equal(loaded[k], saved[group][k]) for k in loaded)
        # The source's EMA went into the EMA, not the generator's weights.
        assert not torch.equal(
            _flat(groups["ema"])["generator.net.0.weight"],
            _flat(groups["generators"])["generator.net.0.weight"],
        )

    def test_checkpoint_folder(self, base_run: Path) -> None:
        """A checkpoint folder loads that checkpoint, not the newest."""
        groups = _groups(_config())
        report = apply_init(_init(base_run / "checkpoints" / "step-0000001"), groups)
        assert report.source.endswith("step-0000001") and not report.problems
        saved = _checkpoint_weights(base_run, 1)["critics"]
        assert all(torch.equal(t, saved[k]) for k, t in _flat(groups["critics"]).items())

    def test_safetensors_file_with_group_prefixed_keys(
        self, base_run: Path, tmp_path: Path
    ) -> None:
        """A file keyed `<group>.<player>.<tensor>` loads like the checkpoint it came from."""
        saved = _checkpoint_weights(base_run, 2)
        flat = {f"{g}.{k}": t for g, tensors in saved.items() for k, t in tensors.items()}
        save_file(flat, str(tmp_path / "weights.safetensors"))
        groups = _groups(_config())
        report = apply_init(_init(tmp_path / "weights.safetensors"), groups)
        assert not report.problems and len(report.matched) == len(flat)
        assert torch.equal(
            groups["generators"]["generator"].state_dict()["net.0.weight"],
            saved["generators"]["generator.net.0.weight"],
        )

    def test_file_named_after_a_group_holds_that_group(self, base_run: Path) -> None:
        """A checkpoint's generators.safetensors: the generators load, the EMA starts from them,
        and the critic's tensors are missing."""
        groups = _groups(_config())
        file = base_run / "checkpoints" / "step-0000002" / "generators.safetensors"
        report = apply_init(_init(file), groups)
        saved = load_file(str(file))
        for group in ("generators", "ema"):
            assert all(torch.equal(t, saved[k]) for k, t in _flat(groups[group]).items())
        assert report.notes == (
            "ema: the source has no EMA weights; the EMA starts from the source's generators",
        )
        assert report.missing == tuple(f"critics.{k}" for k in _flat(groups["critics"]))
        assert report.unexpected == ()

    def test_bare_module_keys_are_unexpected(self, tmp_path: Path) -> None:
        """Keys without a group are not guessed: they are unexpected, with a hint on the names."""
        save_file({"weight": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
        report = apply_init(_init(tmp_path / "bare.safetensors"), _groups(_config()))
        assert report.unexpected == ("weight",) and report.matched == ()
        assert report.notes[-1] == (
            "no tensor matched: names are <group>.<player>.<tensor>, e.g. "
            "generators.generator.net.0.weight"
        )

    def test_missing_path(self, tmp_path: Path) -> None:
        """A path that does not exist is one line naming it."""
        with pytest.raises(gancore.ConfigError) as exc:
            apply_init(_init(tmp_path / "nope"), _groups(_config()))
        assert str(exc.value) == f"init.from: no such file or directory '{tmp_path / 'nope'}'"

    def test_run_directory_without_a_checkpoint(self, tmp_path: Path) -> None:
        """A run directory with no checkpoint is one line naming it."""
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "config.toml").write_text("")
        with pytest.raises(gancore.ConfigError) as exc:
            apply_init(_init(tmp_path / "run"), _groups(_config()))
        assert str(exc.value) == (
            f"init.from: '{tmp_path / 'run'}' has no intact checkpoint to start from: "
            f"no checkpoints in {tmp_path / 'run' / 'checkpoints'}"
        )

    def test_damaged_newest_checkpoint_names_the_intact_one(
        self, base_run: Path, tmp_path: Path
    ) -> None:
        """A damaged newest checkpoint is an error that points at the previous intact one."""
        copied = tmp_path / "copy"
        shutil.copytree(base_run, copied)
        (copied / "checkpoints" / "step-0000002" / "critics.safetensors").write_bytes(b"x")
        with pytest.raises(gancore.ConfigError) as exc:
            apply_init(_init(copied), _groups(_config()))
        assert str(exc.value) == (
            f"init.from: '{copied}' has no intact checkpoint to start from: checkpoint "
            f"'{copied / 'checkpoints' / 'step-0000002'}' is damaged: critics.safetensors is "
            "corrupt or truncated (sha256 mismatch); point init.from at the intact checkpoint "
            f"'{copied / 'checkpoints'}/step-0000001'"
        )

    def test_folder_that_is_neither(self, tmp_path: Path) -> None:
        """A folder without checkpoints/ or manifest.json, and a file of another kind, are refused."""
        with pytest.raises(gancore.ConfigError, match=r"is neither a run directory"):
            apply_init(_init(tmp_path), _groups(_config()))
        (tmp_path / "w.pt").write_bytes(b"")
        with pytest.raises(gancore.ConfigError, match=r"is a file but not \.safetensors"):
            apply_init(_init(tmp_path / "w.pt"), _groups(_config()))


class TestMismatchReport:
    def test_wider_networks_list_both_shapes(self, base_run: Path) -> None:
        """channels 16 instead of 8: the first conv of each network mismatches, with both shapes."""
        config = _config("generator.channels=16", "critic.channels=16")
        report = apply_init(_init(base_run), _groups(config))
        assert Mismatch("critics.critic.net.0.weight", (8, 1, 4, 4), (16, 1, 4, 4)) in (
            report.mismatched
        )
        assert Mismatch("generators.generator.net.6.weight", (8, 1, 4, 4), (16, 1, 4, 4)) in (
            report.mismatched
        )
        assert Mismatch("ema.generator.net.6.weight", (8, 1, 4, 4), (16, 1, 4, 4)) in (
            report.mismatched
        )
        assert report.missing == () and report.unexpected == ()

    def test_latent_dim_changes_only_the_first_layer(self, base_run: Path) -> None:
        """latent_dim 4 instead of 8: the generators' input conv mismatches, all else loads."""
        groups = _groups(_config("generator.latent_dim=4"))
        report = apply_init(_init(base_run), groups)
        assert report.mismatched == tuple(
            Mismatch(f"{g}.generator.net.0.weight", (8, 16, 4, 4), (4, 16, 4, 4))
            for g in ("generators", "ema")
        )
        saved = _checkpoint_weights(base_run, 2)["generators"]
        loaded = _flat(groups["generators"])
        assert torch.equal(loaded["generator.net.1.weight"], saved["generator.net.1.weight"])
        assert not torch.equal(
            loaded["generator.net.0.weight"][:, :, 0, 0],
            saved["generator.net.0.weight"][:4, :, 0, 0],
        )

    def test_different_critic_is_missing_and_unexpected(self, base_run: Path) -> None:
        """A critic without batch norm: its middle conv's bias is missing, the source's norm
        unexpected; the summary counts them."""
        report = apply_init(_init(base_run), _groups(_config("critic.norm='none'")))
        assert report.missing == ("critics.critic.net.2.bias",)
        assert sorted(report.unexpected) == [
            "critics.critic.net.3.bias",
            "critics.critic.net.3.num_batches_tracked",
            "critics.critic.net.3.running_mean",
            "critics.critic.net.3.running_var",
            "critics.critic.net.3.weight",
        ]
        assert report.summary() == (
            "init: loaded 33 of 34 tensors from "
            f"{base_run / 'checkpoints' / 'step-0000002'} (1 missing, 5 unexpected, 0 shape "
            "mismatches, 0 excluded)"
        )

    def test_strict_mode_names_every_problem_and_loads_nothing(self, base_run: Path) -> None:
        """strict = true: one line per problem naming init.from, and the networks are untouched."""
        groups = _groups(_config("generator.latent_dim=4"))
        before = _flat(groups["generators"])
        with pytest.raises(gancore.ConfigError) as exc:
            apply_init(_init(base_run, strict=True), groups)
        assert exc.value.problems == [
            f"init.from '{base_run}' (strict): shape mismatch {g}.generator.net.0.weight: "
            "source [8, 16, 4, 4], model [4, 16, 4, 4]"
            for g in ("generators", "ema")
        ]
        after = _flat(groups["generators"])
        assert all(torch.equal(before[k], after[k]) for k in before)

    def test_strict_mode_passes_when_everything_matches(self, base_run: Path) -> None:
        """strict = true on the same architecture loads everything."""
        report = apply_init(_init(base_run, strict=True), _groups(_config()))
        assert not report.problems and report.matched

    def test_excluded_tensors_keep_their_initialization(self, base_run: Path) -> None:
        """exclude patterns leave those tensors alone, list them, and never trip strict."""
        groups = _groups(_config("critic.norm='none'"))
        fresh = _flat(groups["critics"])
        report = apply_init(
            _init(base_run, strict=True, exclude=("critics.critic.net.[235].*",)), groups
        )
        assert not report.problems
        assert "critics.critic.net.2.bias" in report.excluded
        assert "critics.critic.net.3.running_mean" in report.excluded
        loaded = _flat(groups["critics"])
        assert torch.equal(loaded["critic.net.2.weight"], fresh["critic.net.2.weight"])
        saved = _checkpoint_weights(base_run, 2)["critics"]
        assert torch.equal(loaded["critic.net.0.weight"], saved["critic.net.0.weight"])

    def test_groups_choose_what_loads(self, base_run: Path) -> None:
        """groups = ['generators', 'ema'] keeps the critic fresh and says so."""
        groups = _groups(_config())
        fresh = _flat(groups["critics"])
        report = apply_init(_init(base_run, groups=("generators", "ema")), groups)
        assert report.notes == ("critics: not loaded (not in init.groups)",)
        assert all(torch.equal(t, fresh[k]) for k, t in _flat(groups["critics"]).items())
        assert not any(n.startswith("critics.") for n in report.matched)

    def test_ema_follows_the_generators_it_was_not_chosen_with(self, base_run: Path) -> None:
        """groups = ['generators']: the EMA starts from the source's generators, not from the
        new run's own initialization, and the report says why."""
        groups = _groups(_config())
        report = apply_init(_init(base_run, groups=("generators",)), groups)
        assert report.notes == (
            "ema: not in init.groups; the EMA starts from the source's generators",
            "critics: not loaded (not in init.groups)",
        )
        saved = _checkpoint_weights(base_run, 2)["generators"]
        assert all(torch.equal(t, saved[k]) for k, t in _flat(groups["ema"]).items())
        assert report.unexpected == ()

    def test_unknown_group(self, base_run: Path) -> None:
        """A group the run does not have is one line listing the groups it has."""
        with pytest.raises(gancore.ConfigError) as exc:
            apply_init(_init(base_run, groups=("encoders",)), _groups(_config()))
        assert str(exc.value) == (
            "init.groups: the new run has no group 'encoders'; its groups: critics, ema, generators"
        )

    def test_source_ema_without_ema_in_the_new_run(self, base_run: Path) -> None:
        """A run without EMA leaves the source's EMA weights out, with a note, not an error."""
        report = apply_init(_init(base_run, strict=True), _groups(_config(), ema=False))
        assert report.notes == ("ema: in the source, but the new run has none; not loaded",)

    def test_text_shows_the_summary_then_the_details(self) -> None:
        """The printed report: the summary, notes, then up to ten lines per kind."""
        report = InitReport(
            requested="a",
            source="a/checkpoints/step-0000001",
            strict=False,
            matched=("generators.g.w",),
            missing=tuple(f"critics.c.w{i}" for i in range(12)),
            unexpected=(),
            mismatched=(Mismatch("ema.g.w", (1,), (2,)),),
            excluded=(),
            notes=("a note",),
        )
        lines = report.text().splitlines()
        assert lines[0] == (
            "init: loaded 1 of 14 tensors from a/checkpoints/step-0000001 (12 missing, "
            "0 unexpected, 1 shape mismatches, 0 excluded)"
        )
        assert lines[1:3] == [
            "  note: a note",
            "  missing critics.c.w0 (in the new model, not in the source)",
        ]
        assert lines[-2:] == [
            "  ... 2 more missing (see init.json)",
            "  shape mismatch ema.g.w: source [1], model [2]",
        ]


class TestInTheLoop:
    def test_new_run_starts_at_step_zero_from_the_source(
        self, base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With a learning rate too small to move a float32 weight, the parameters after one step
        are the source's (a fresh build's are not); the run counts from 0, its optimizers are
        fresh, and it writes and prints the report."""
        config = _config(
            "run.steps=1",
            "optimizers.generator.lr=1e-30",  # > 0, yet too small to change a float32 weight
            "optimizers.critic.lr=1e-30",
            f"init={{from='{base_run}'}}",
        )
        capsys.readouterr()
        result = train(config, tmp_path / "new", progress=False)
        assert result.step == 1
        saved = _checkpoint_weights(base_run, 2)
        fresh = _groups(config)
        for group, modules in (("generators", result.generators), ("critics", result.critics)):
            for player, module in modules.items():
                for key, param in module.named_parameters():
                    assert torch.equal(param, saved[group][f"{player}.{key}"]), key
                    initial = fresh[group][player].get_parameter(key)
                    assert not torch.equal(initial, saved[group][f"{player}.{key}"]), key
        report = json.loads((tmp_path / "new" / "init.json").read_text())
        assert report["from"] == str(base_run) and report["missing"] == []
        assert len(report["matched"]) == sum(len(t) for t in saved.values())
        assert capsys.readouterr().err.startswith(f"init: loaded {len(report['matched'])} of ")
        assert result.checkpoint is not None
        _, state = gancore.load_checkpoint(result.checkpoint)
        assert state["iteration"] == 1 and state["loop"]["batches_drawn"] == 1
        # One Adam step each, not the source's two plus one.
        for player in ("generator", "critic"):
            steps = {float(s["step"]) for s in state["optimizers"][player]["state"].values()}
            assert steps == {1.0}
        log = (tmp_path / "new" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in log] == [1]

    def test_resume_continues_the_run_without_the_source(
        self, base_run: Path, tmp_path: Path
    ) -> None:
        """One step, a stop, the source deleted and a resume give the weights of two straight
        steps: a resumed run restores its own checkpoint and never reads init.from again."""
        source = tmp_path / "source"
        shutil.copytree(base_run, source)
        config = _config(f"init={{from='{source}'}}")
        straight = train(config, tmp_path / "straight", progress=False)
        gancore.testing.train_interrupted(config, tmp_path / "split", after=1)
        shutil.rmtree(source)
        resumed = train(config, tmp_path / "split", progress=False, resume=True)
        assert (straight.step, resumed.step) == (2, 2)
        expected = _checkpoint_weights(tmp_path / "straight", 2)
        got = _checkpoint_weights(tmp_path / "split", 2)
        for group in ("generators", "critics", "ema"):
            assert all(torch.equal(t, got[group][k]) for k, t in expected[group].items()), group

    def test_a_bad_init_leaves_no_run_directory(self, tmp_path: Path) -> None:
        """A missing source stops the run before anything is written."""
        config = _config(f"init={{from='{tmp_path / 'nope'}'}}")
        with pytest.raises(gancore.ConfigError, match=r"^init\.from: no such file or directory"):
            train(config, tmp_path / "new", progress=False)
        assert not (tmp_path / "new").exists()

    def test_gan_train_prints_one_line_and_exits_2(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`gan train` with a missing source: exit status 2, one error line, no traceback."""
        from gancore._cli import main

        monkeypatch.chdir(tmp_path)
        (tmp_path / "run.toml").write_text(BASE)
        capsys.readouterr()
        status = main(["train", "run.toml", "--run-dir", "new", "--set", "init.from=runs/gone"])
        assert status == 2
        assert (
            capsys.readouterr().err == "error: init.from: no such file or directory 'runs/gone'\n"
        )
        assert not (tmp_path / "new").exists()
