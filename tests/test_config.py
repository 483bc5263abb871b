"""Run configuration: TOML files, every problem at once, --set overrides, optimizers, round trips.

The tests that check exact messages use a registry of the built-ins only (entry points off), so the
"available" lists do not change when plugins add components.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
import torch

import gancore
from gancore._build import build_run
from gancore._config import apply_overrides, config_to_dict, parse_config

MINIMAL = {"data": {"name": "toy2d"}, "generator": {"name": "mlp"}, "critic": {"name": "mlp"}}

BAD_RUN = """\
[rnu]
name = "typo"

[run]
steps = 0
sed = 3

[training]
batch_size = "64"

[generator]
name = "mlp"
hiden = 32

[critic]
name = "mlpp"

[loss]
name = "wgan"
"""

SECTIONS = (
    "data, task, generator, critic, loss, regularizers, augmenter, metrics, run, training, "
    "optimizers, stages, init"
)


@pytest.fixture
def registry() -> gancore.Registry:
    """The built-in components only."""
    return gancore.load_registry(entry_points=False)[0]


def problems_of(document: dict[str, Any], registry: gancore.Registry) -> list[str]:
    with pytest.raises(gancore.ConfigError) as exc:
        parse_config(document, registry)
    return exc.value.problems


def parsed(document: dict[str, Any], registry: gancore.Registry) -> gancore.RunConfig:
    return parse_config(document, registry)


class TestLoadConfig:
    def test_every_problem_is_reported_at_once(
        self, tmp_path: Path, registry: gancore.Registry
    ) -> None:
        """A file with eight mistakes gives eight one-line problems, each with its key path."""
        path = tmp_path / "bad.toml"
        path.write_text(BAD_RUN)
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_config(path, registry=registry)
        expected = [
            f"rnu: unknown section (did you mean 'run'?); sections: {SECTIONS}",
            "run.sed: unknown key (did you mean 'seed'?); [run] accepts: name, output_dir, seed, "
            "steps, trackers",
            "run.steps: 'steps' must be >= 1 (got 0)",
            "training.batch_size: expected an integer, got '64' (string)",
            "data: required section is missing (a table with the name of a dataset; see "
            "`gan components dataset`)",
            "generator.hiden: unknown key (did you mean 'hidden'?); generator 'mlp' accepts: "
            "latent_dim, hidden, depth, activation, norm",
            "critic.name: unknown critic 'mlpp' (did you mean 'mlp'?); available: dcgan, mlp",
            "loss.name: unknown loss 'wgan'; available: hinge, least-squares, minimax, "
            "non-saturating; is gan-wgan installed?",
        ]
        assert exc.value.problems == expected
        assert exc.value.source == str(path)
        assert str(exc.value) == "\n".join(f"{path}: {line}" for line in expected)

    def test_config_error_is_a_value_error(
        self, tmp_path: Path, registry: gancore.Registry
    ) -> None:
        """``ConfigError`` subclasses ``ValueError`` and keeps the problems as a list."""
        path = tmp_path / "bad.toml"
        path.write_text("[run]\nsteps = 0\n")
        with pytest.raises(ValueError, match=r"run\.steps") as exc:
            gancore.load_config(path, registry=registry)
        assert isinstance(exc.value, gancore.ConfigError)
        assert isinstance(exc.value.problems, list)
        assert len(exc.value.problems) == 2  # steps and the missing [data]

    def test_invalid_toml_is_one_line_naming_the_file(
        self, tmp_path: Path, registry: gancore.Registry
    ) -> None:
        """A TOML syntax error is one line with the file, line and column."""
        path = tmp_path / "syntax.toml"
        path.write_text('[run]\nname = = "x"\n')
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_config(path, registry=registry)
        assert exc.value.problems == ["invalid TOML: Invalid value (at line 2, column 8)"]
        assert str(exc.value) == f"{path}: invalid TOML: Invalid value (at line 2, column 8)"

    def test_missing_file(self, tmp_path: Path, registry: gancore.Registry) -> None:
        """A missing file is one problem naming it."""
        path = tmp_path / "nope.toml"
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_config(path, registry=registry)
        assert exc.value.problems == [f"no such file {str(path)!r}"]

    def test_directory_is_not_a_file(self, tmp_path: Path, registry: gancore.Registry) -> None:
        """A directory given as the run file is reported as not a file."""
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_config(tmp_path, registry=registry)
        assert exc.value.problems == [f"{str(tmp_path)!r} is not a file"]

    def test_overrides_apply_before_validation(
        self, tmp_path: Path, registry: gancore.Registry
    ) -> None:
        """``--set`` values are validated like the file's own values."""
        path = tmp_path / "run.toml"
        path.write_text(
            '[data]\nname = "toy2d"\n[generator]\nname = "mlp"\n[critic]\nname = "mlp"\n'
        )
        config = gancore.load_config(
            path, ["run.steps=7", "training.batch_size=16", "loss.name=hinge"], registry=registry
        )
        assert (config.run.steps, config.training.batch_size) == (7, 16)
        assert config.loss.name == "gancore:hinge"
        assert config.source == str(path)
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_config(path, ["run.steps='7'"], registry=registry)
        assert exc.value.problems == ["run.steps: expected an integer, got '7' (string)"]


class TestParseConfig:
    def test_defaults_are_filled_in(self, registry: gancore.Registry) -> None:
        """A config with only data and networks gets every other section's defaults."""
        config = parsed(MINIMAL, registry)
        assert (config.run.name, config.run.steps, config.run.seed) == ("run", 1000, 0)
        assert (config.training.batch_size, config.training.critic_steps) == (64, 1)
        assert config.training.ema_half_life_images is None
        assert config.task.name == "gancore:unconditional"
        assert config.loss.name == "gancore:non-saturating"
        assert config.augmenter.name == "gancore:none"
        assert (config.regularizers, config.metrics) == ((), ())
        assert config.data.options == config.data.spec.defaults()
        generator = config.optimizers.generator
        assert (generator.name, generator.lr, generator.schedule) == ("adam", 2e-4, "constant")
        assert generator.options["betas"] == (0.9, 0.999)
        assert generator.options["eps"] == 1e-8

    def test_missing_data_section(self, registry: gancore.Registry) -> None:
        """``[data]`` is the one required section."""
        assert problems_of({}, registry) == [
            "data: required section is missing (a table with the name of a dataset; see "
            "`gan components dataset`)"
        ]

    @pytest.mark.parametrize(
        ("section", "value", "problem"),
        [
            ("run", {"steps": 0}, "run.steps: 'steps' must be >= 1 (got 0)"),
            ("run", {"seed": -1}, "run.seed: 'seed' must be >= 0 (got -1)"),
            ("run", {"steps": 1.5}, "run.steps: expected an integer, got 1.5 (float)"),
            ("run", {"steps": True}, "run.steps: expected an integer, got True (boolean)"),
            (
                "run",
                {"trackers": "tensorboard"},
                "run.trackers: expected a list of strings, got 'tensorboard' (string)",
            ),
            (
                "training",
                {"precision": "fp8"},
                "training.precision: expected one of 'no', 'bf16', 'fp16', got 'fp8' (string)",
            ),
            (
                "training",
                {"ema_half_life_images": -1},
                "training.ema_half_life_images: 'ema_half_life_images' must be > 0 (got -1.0)",
            ),
            (
                "training",
                {"ema_half_life_images": "x"},
                "training.ema_half_life_images: expected a number, got 'x' (string)",
            ),
            ("training", 3, "training: expected a table, got 3 (integer)"),
        ],
    )
    def test_wrong_values(
        self, registry: gancore.Registry, section: str, value: Any, problem: str
    ) -> None:
        """Wrong types and out-of-range values are reported in attrs' voice with the key path."""
        assert problems_of(MINIMAL | {section: value}, registry) == [problem]

    def test_component_option_validator(self, registry: gancore.Registry) -> None:
        """A component's own attrs validator is reported under its list index."""
        document = MINIMAL | {"regularizers": [{"name": "r1"}, {"name": "r1", "gamma": -1}]}
        assert problems_of(document, registry) == [
            "regularizers[1].gamma: 'gamma' must be >= 0 (got -1.0)"
        ]

    def test_misspelled_component_option(self, registry: gancore.Registry) -> None:
        """A misspelled option gets a did-you-mean and the component's accepted keys."""
        document = MINIMAL | {"regularizers": [{"name": "r1", "gama": 1}]}
        assert problems_of(document, registry) == [
            "regularizers[0].gama: unknown key (did you mean 'gamma'?); regularizer 'r1' "
            "accepts: gamma, interval"
        ]

    def test_component_without_a_name(self, registry: gancore.Registry) -> None:
        """A component table needs a string ``name``."""
        document = MINIMAL | {"loss": {"margin": 1}, "augmenter": {"name": 3}, "task": "x"}
        assert problems_of(document, registry) == [
            "task: expected a table with a 'name' key, got 'x' (string)",
            "loss.name: required key is missing (a loss name; see `gan components loss`)",
            "augmenter.name: expected a string, got 3 (integer)",
        ]

    def test_short_and_qualified_names_resolve_to_qualified(
        self, registry: gancore.Registry
    ) -> None:
        """Short and qualified names pick the same component, shown qualified."""
        short = parsed(MINIMAL | {"loss": {"name": "hinge"}}, registry)
        qualified = parsed(MINIMAL | {"loss": {"name": "gancore:hinge"}}, registry)
        assert short.loss == qualified.loss
        assert short.loss.name == "gancore:hinge"

    def test_list_sections_take_a_list_of_tables(self, registry: gancore.Registry) -> None:
        """``[[regularizers]]`` gives a tuple of components; anything else is refused."""
        many = parsed(MINIMAL | {"regularizers": [{"name": "r1"}, {"name": "r1"}]}, registry)
        assert [c.options.gamma for c in many.regularizers] == [10.0, 10.0]
        assert problems_of(MINIMAL | {"metrics": 3}, registry) == [
            "metrics: expected a list of tables ([[metrics]]), got 3 (integer)"
        ]


class TestOptimizers:
    def optimizer(self, registry: gancore.Registry, table: dict[str, Any]) -> Any:
        config = parsed(MINIMAL | {"optimizers": {"generator": table}}, registry)
        return config.optimizers.generator

    @pytest.mark.parametrize(
        ("name", "cls"),
        [("Adam", torch.optim.Adam), ("RMSprop", torch.optim.RMSprop), ("sgd", torch.optim.SGD)],
    )
    def test_any_torch_optimizer_by_name(
        self, registry: gancore.Registry, name: str, cls: type
    ) -> None:
        """Any ``torch.optim`` class is found by name, case-insensitively, and builds."""
        config = self.optimizer(registry, {"name": name, "lr": 0.01})
        assert config.name == name.lower()
        assert config.optimizer_class is cls
        optimizer = config.build([torch.zeros(2, requires_grad=True)])
        assert type(optimizer) is cls
        assert optimizer.param_groups[0]["lr"] == 0.01

    def test_integer_betas_become_floats(self, registry: gancore.Registry) -> None:
        """``betas = [0, 0.9]`` becomes ``(0.0, 0.9)``, which torch's Adam accepts."""
        config = self.optimizer(registry, {"betas": [0, 0.9], "eps": 0})
        assert config.options["betas"] == (0.0, 0.9)
        assert all(type(b) is float for b in config.options["betas"])
        assert type(config.options["eps"]) is float
        optimizer = config.build([torch.zeros(2, requires_grad=True)])
        assert optimizer.param_groups[0]["betas"] == (0.0, 0.9)

    def test_optimizer_defaults_are_filled_in(self, registry: gancore.Registry) -> None:
        """The optimizer's own constructor defaults appear in the resolved options."""
        config = self.optimizer(registry, {"name": "sgd"})
        assert config.options == {
            "momentum": 0,
            "dampening": 0,
            "weight_decay": 0,
            "nesterov": False,
        }

    def test_unknown_optimizer_option(self, registry: gancore.Registry) -> None:
        """A misspelled constructor argument gets a did-you-mean and the accepted keys."""
        document = MINIMAL | {"optimizers": {"generator": {"name": "sgd", "momentun": 0.9}}}
        assert problems_of(document, registry) == [
            "optimizers.generator.momentun: unknown option for torch.optim.SGD (did you mean "
            "'momentum'?); accepts: dampening, decay_start, final_lr_scale, lr, momentum, name, "
            "nesterov, schedule, weight_decay"
        ]

    def test_unknown_optimizer(self, registry: gancore.Registry) -> None:
        """An unknown optimizer name gets a did-you-mean and the available names."""
        problems = problems_of(MINIMAL | {"optimizers": {"critic": {"name": "adm"}}}, registry)
        assert len(problems) == 1
        assert problems[0].startswith(
            "optimizers.critic.name: unknown optimizer 'adm' (did you mean 'adam'?); available: "
        )
        assert "adam, adamax, adamw" in problems[0]
        assert "rmsprop" in problems[0]

    def test_torch_rejecting_a_value_is_reported(self, registry: gancore.Registry) -> None:
        """Values torch refuses (a beta of 1.5) are reported at validation, not at step 0."""
        document = MINIMAL | {"optimizers": {"generator": {"betas": [1.5, 0.9]}}}
        assert problems_of(document, registry) == [
            "optimizers.generator: torch.optim.Adam rejected the options: "
            "Invalid beta parameter at index 0: 1.5"
        ]

    def test_own_fields_are_validated(self, registry: gancore.Registry) -> None:
        """``lr`` and ``schedule`` are checked like any other field."""
        document = MINIMAL | {"optimizers": {"critic": {"lr": 0, "schedule": "step"}}}
        assert problems_of(document, registry) == [
            "optimizers.critic.lr: 'lr' must be > 0 (got 0.0)",
            "optimizers.critic.schedule: expected one of 'constant', 'linear', 'cosine', "
            "got 'step' (string)",
        ]

    def test_unknown_player(self, registry: gancore.Registry) -> None:
        """``[optimizers]`` has exactly two players."""
        document = MINIMAL | {"optimizers": {"critc": {}}}
        assert problems_of(document, registry) == [
            "optimizers.critc: task 'unconditional' has no player group 'critc' (did you mean "
            "'critic'?); its groups: critic, generator"
        ]


class TestApplyOverrides:
    def test_values_are_toml_typed(self) -> None:
        """VALUE is parsed as TOML: numbers, booleans, arrays and quoted strings keep their type."""
        document = apply_overrides(
            {},
            ["a.int=3", "a.float=1e-3", "a.bool=true", "a.list=[0, 0.9]", "a.quoted='7'"],
        )
        assert document == {
            "a": {"int": 3, "float": 0.001, "bool": True, "list": [0, 0.9], "quoted": "7"}
        }

    def test_bare_words_are_strings(self) -> None:
        """A value that is not TOML (a path, a word) is taken as a string."""
        document = apply_overrides({}, ["data.path=./images", "loss.name=hinge", "x.y= spaced "])
        assert document == {
            "data": {"path": "./images"},
            "loss": {"name": "hinge"},
            "x": {"y": "spaced"},
        }

    def test_list_index(self) -> None:
        """A numeric path part indexes a list: ``regularizers.0.gamma=5``."""
        original = {"regularizers": [{"name": "r1", "gamma": 1.0}, {"name": "r1"}]}
        document = apply_overrides(
            original, ["regularizers.0.gamma=5", "regularizers.1.interval=4"]
        )
        assert document == {
            "regularizers": [{"name": "r1", "gamma": 5}, {"name": "r1", "interval": 4}]
        }
        assert original["regularizers"][0]["gamma"] == 1.0  # the input is not modified

    def test_missing_tables_are_created(self) -> None:
        """Overriding a key of a table that does not exist creates it."""
        document = apply_overrides({"run": {"name": "x"}}, ["training.batch_size=8", "run.seed=1"])
        assert document == {"run": {"name": "x", "seed": 1}, "training": {"batch_size": 8}}

    def test_value_may_contain_equals(self) -> None:
        """Only the first '=' separates the key from the value."""
        assert apply_overrides({}, ["run.name='a=b'"]) == {"run": {"name": "a=b"}}

    def test_errors_are_collected(self) -> None:
        """Every bad override is reported, one line each."""
        with pytest.raises(gancore.ConfigError) as exc:
            apply_overrides(
                {"regularizers": [{"name": "r1"}], "run": {"name": "x"}},
                [
                    "training.batch_size",
                    "a..b=1",
                    "=3",
                    "regularizers.3.gamma=1",
                    "run.name.first=1",
                ],
            )
        assert exc.value.problems == [
            "--set 'training.batch_size': expected KEY=VALUE, e.g. training.batch_size=32",
            "--set 'a..b=1': expected a dotted key like training.batch_size",
            "--set '=3': expected a dotted key like training.batch_size",
            "--set 'regularizers.3.gamma=1': no item 3 in a list of 1",
            "--set 'run.name.first=1': cannot set 'first' here",
        ]


class TestConfigToToml:
    DOCUMENT: ClassVar[dict[str, Any]] = {
        "run": {"name": "digits-run", "steps": 5},
        "data": {"name": "digits", "resolution": 16},
        "generator": {"name": "dcgan"},
        "critic": {"name": "dcgan", "norm": "none"},
        "loss": {"name": "hinge"},
        "regularizers": [{"name": "r1", "gamma": 1, "interval": 16}],
        "augmenter": {"name": "hflip", "p": 0.25},
        "metrics": [{"name": "mode-coverage"}],
        "optimizers": {"generator": {"betas": [0, 0.99]}, "critic": {"name": "RMSprop"}},
        "training": {"ema_half_life_images": 500},
    }

    def test_round_trip(self, registry: gancore.Registry) -> None:
        """The TOML parses back to an equal config."""
        config = parsed(self.DOCUMENT, registry)
        text = gancore.config_to_toml(config)
        again = parsed(tomllib.loads(text), registry)
        assert config_to_dict(again) == config_to_dict(config)
        assert again == config

    def test_names_are_qualified(self, registry: gancore.Registry) -> None:
        """Every component is written with its qualified name."""
        document = tomllib.loads(gancore.config_to_toml(parsed(self.DOCUMENT, registry)))
        assert document["generator"]["name"] == "gancore:dcgan"
        assert document["critic"] == {
            "name": "gancore:dcgan",
            "channels": 64,
            "max_channels": 512,
            "norm": "none",
        }
        assert document["regularizers"] == [{"name": "gancore:r1", "gamma": 1.0, "interval": 16}]
        assert document["task"] == {"name": "gancore:unconditional"}
        assert document["optimizers"]["critic"]["name"] == "rmsprop"
        assert document["optimizers"]["generator"]["betas"] == [0.0, 0.99]

    def test_output_validates_through_a_file(
        self, tmp_path: Path, registry: gancore.Registry
    ) -> None:
        """The resolved config written to a file loads with ``load_config``."""
        path = tmp_path / "resolved.toml"
        path.write_text(gancore.config_to_toml(parsed(self.DOCUMENT, registry)))
        config = gancore.load_config(path, registry=registry)
        assert config.run.name == "digits-run"
        assert config.training.ema_half_life_images == 500.0

    def test_unset_values_are_left_out(self, registry: gancore.Registry) -> None:
        """Options that are None (no EMA, no best metric) are omitted, and read back as None."""
        document = tomllib.loads(gancore.config_to_toml(parsed(MINIMAL, registry)))
        assert "ema_half_life_images" not in document["training"]
        assert "best_metric" not in document["training"]

    def test_optimizer_defaults_that_toml_cannot_hold(self, registry: gancore.Registry) -> None:
        """Adafactor's default eps (None, 1e-3) is left implicit, so its config still round-trips."""
        config = parsed(MINIMAL | {"optimizers": {"generator": {"name": "adafactor"}}}, registry)
        assert "eps" not in config.optimizers.generator.options
        again = parsed(tomllib.loads(gancore.config_to_toml(config)), registry)
        assert again == config


# -------------------------------------------------------------------------------------------------
# Components that resolve other components through their build context
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _WrappedOptions:
    inner: dict[str, Any] = attrs.field(
        factory=lambda: {"name": "toy2d"}, metadata={"doc": "a dataset table"}
    )


class _Wrapped:
    """A dataset that serves the items of the dataset its ``inner`` table names."""

    def __init__(self, inner: Any, context: gancore.BuildContext) -> None:
        self.inner, self.context = inner, context
        self.shapes = inner.shapes

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return dict(self.inner[index])


def _build_wrapped(options: _WrappedOptions, context: gancore.BuildContext) -> _Wrapped:
    return _Wrapped(context.resolve("dataset", options.inner, key="inner"), context)


class _NestingPlugin:
    @gancore.hookimpl
    def gancore_register_datasets(self, register: gancore.RegisterCallback) -> None:
        register("wrapped", _build_wrapped, options=_WrappedOptions, description="Wraps a dataset.")


class TestResolve:
    @pytest.fixture
    def nesting(self) -> gancore.Registry:
        """Built-ins and a plugin whose dataset resolves another one; not the process-wide one."""
        return gancore.load_registry(entry_points=False, plugins=[("nest", _NestingPlugin())])[0]

    def test_dataset_built_with_none_gets_the_registry(self, nesting: gancore.Registry) -> None:
        """``config.data.build(None)`` hands the factory a context with the run's registry."""
        config = parse_config({"data": {"name": "wrapped", "inner": {"name": "toy2d"}}}, nesting)
        assert config.registry is nesting
        data = config.data.build(None)
        assert (data.context.registry, data.context.path, data.context.data_shape) == (
            nesting,
            "data",
            (),
        )
        assert data.shapes == {"x": (2,)} and len(data) == len(data.inner)

    def test_problems_have_key_paths_and_the_file(self, nesting: gancore.Registry) -> None:
        """Every problem of a nested table is one line under its full key path."""
        document = {"data": {"name": "wrapped", "inner": {"name": "toy2", "size": "9"}}}
        config = parse_config(document, nesting, source="run.toml")
        with pytest.raises(gancore.ConfigError) as exc:
            config.data.build(None)
        assert exc.value.source == "run.toml"
        (line,) = exc.value.problems
        assert line.startswith("data.inner.name: unknown dataset 'toy2' (did you mean 'toy2d'?)")
        document["data"]["inner"] = {"name": "toy2d", "sise": 9}
        with pytest.raises(gancore.ConfigError, match=r"data\.inner\.sise: unknown key"):
            parse_config(document, nesting).data.build(None)

    def test_context_without_registry_is_an_error(self) -> None:
        """A context made by hand has no registry to resolve in: a one-line error."""
        context = gancore.BuildContext(data_shape=(2,))
        with pytest.raises(ValueError, match="has no registry"):
            context.resolve("dataset", {"name": "toy2d"})

    def test_network_contexts_get_registry_and_path(self, registry: gancore.Registry) -> None:
        """A task's networks and their contexts carry the run's registry and key path."""
        seen: list[gancore.BuildContext] = []
        config = parse_config(MINIMAL, registry)
        spec = config.generator.spec  # type: ignore[union-attr]
        factory = spec.factory
        recorded = attrs.evolve(
            spec, factory=lambda options, context: seen.append(context) or factory(options, context)
        )
        config = attrs.evolve(config, generator=attrs.evolve(config.generator, spec=recorded))
        task_context = gancore.TaskBuildContext(config=config, dataset=config.data.build(None))
        task_context.build_generator()
        assert (seen[0].registry, seen[0].path, seen[0].data_shape) == (registry, "generator", (2,))
        assert task_context.registry is registry
        built = task_context.resolve("loss", {"name": "hinge"}, key="extra")
        assert type(built).__name__ == "Hinge"
        with pytest.raises(gancore.ConfigError) as exc:
            task_context.resolve("loss", {"name": "hinj"}, key="extra")
        assert exc.value.problems[0].startswith("task.extra.name: unknown loss 'hinj'")


class TestListSections:
    """A list section written as one table is refused with a hint at the double brackets."""

    def test_regularizers_as_a_table(self, registry: gancore.Registry) -> None:
        """``[regularizers]`` instead of ``[[regularizers]]`` is one line naming the fix."""
        document = tomllib.loads('[regularizers]\nname = "r1"\ngamma = 2.0\n')
        assert problems_of(MINIMAL | document, registry) == [
            "regularizers: expected a list of tables, got one table (name = 'r1'); write "
            "[[regularizers]] (double brackets) instead of [regularizers], once per entry"
        ]

    @pytest.mark.parametrize("section", ["metrics", "stages"])
    def test_other_list_sections(self, registry: gancore.Registry, section: str) -> None:
        """``[metrics]`` and ``[stages]`` get the same hint."""
        assert problems_of(MINIMAL | {section: {"steps": 2}}, registry) == [
            f"{section}: expected a list of tables, got one table; write [[{section}]] "
            f"(double brackets) instead of [{section}], once per entry"
        ]


class TestImpossibleValues:
    """Values that cannot work are refused when the config is loaded, one line each."""

    @pytest.mark.parametrize(
        ("document", "problem"),
        [
            (
                {"training": {"batch_size": 10**12}},
                "training.batch_size: 'batch_size' must be <= 1048576 (got 1000000000000)",
            ),
            (
                {"training": {"critic_steps": 10**6}},
                "training.critic_steps: 'critic_steps' must be <= 1000 (got 1000000)",
            ),
            (
                {"training": {"ema_half_life_images": float("inf")}},
                "training.ema_half_life_images: 'ema_half_life_images' must be a finite number "
                "(got inf)",
            ),
            (
                {"training": {"num_samples": 10**9}},
                "training.num_samples: 'num_samples' must be <= 65536 (got 1000000000)",
            ),
            (
                {"training": {"num_workers": 10**6}},
                "training.num_workers: 'num_workers' must be <= 256 (got 1000000)",
            ),
            (
                {"run": {"seed": 2**62}},
                "run.seed: 'seed' must be <= 4294967295 (got 4611686018427387904)",
            ),
            (
                {"optimizers": {"critic": {"lr": float("inf")}}},
                "optimizers.critic.lr: 'lr' must be a finite number (got inf)",
            ),
            (
                {"optimizers": {"critic": {"lr": float("nan")}}},
                "optimizers.critic.lr: 'lr' must be > 0 (got nan)",
            ),
            (
                {"optimizers": {"generator": {"betas": [0.0, float("inf")]}}},
                "optimizers.generator.betas: must be finite (got [0.0, inf] (array))",
            ),
            (
                {"optimizers": {"generator": {"eps": float("-inf")}}},
                "optimizers.generator.eps: must be finite (got -inf (float))",
            ),
            (
                {"stages": [{"lr": {"generator": float("inf")}}]},
                "stages[0].lr: a learning rate must be a finite number > 0 (got inf)",
            ),
            (
                {"stages": [{"resolution": 10**6}]},
                "stages[0].resolution: 'resolution' must be <= 16384 (got 1000000)",
            ),
        ],
    )
    def test_refused_at_load(
        self, registry: gancore.Registry, document: dict[str, Any], problem: str
    ) -> None:
        """Each impossible value is one problem line naming the key, the bound and the value."""
        assert problems_of(MINIMAL | document, registry) == [problem]

    def test_largest_allowed_values_load(self, registry: gancore.Registry) -> None:
        """The bounds themselves are accepted."""
        config = parsed(
            MINIMAL
            | {"training": {"batch_size": 2**20, "num_samples": 2**16}, "run": {"seed": 2**32 - 1}},
            registry,
        )
        assert (config.training.batch_size, config.run.seed) == (2**20, 2**32 - 1)

    def test_batch_larger_than_dataset_is_allowed(self, registry: gancore.Registry) -> None:
        """A batch larger than the dataset builds: its items repeat (few-shot training)."""
        config = parsed(
            MINIMAL | {"data": {"name": "toy2d", "size": 10}, "training": {"batch_size": 11}},
            registry,
        )
        assert len(build_run(config).dataset) == 10


class TestNetworkMemory:
    """A network too large for the machine is refused at build with its name and estimate."""

    HUGE: ClassVar[dict[str, Any]] = {
        "data": {"name": "digits", "resolution": 16},
        "generator": {"name": "dcgan"},
        "critic": {"name": "dcgan", "channels": 100000, "max_channels": 100000},
        "training": {"batch_size": 4},
    }

    def test_estimate_is_refused(
        self, registry: gancore.Registry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The estimate (4 x float32 parameters + buffers) is compared with what is available."""
        monkeypatch.setattr("gancore._config.available_memory", lambda: 100 * 2**30)
        with pytest.raises(gancore.ConfigError) as exc:
            build_run(parsed(self.HUGE, registry))
        assert exc.value.problems == [
            "critic 'dcgan': its 160,003,500,001 parameters need about 2384.2 GiB to train "
            "(weights, gradients, Adam's two moments), more than the 100.0 GiB of memory "
            "available; make it smaller (channels, depth)"
        ]

    def test_allocation_failure_names_the_component(
        self, registry: gancore.Registry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Where no estimate is possible, the allocator's refusal names the component."""
        monkeypatch.setattr("gancore._config.available_memory", lambda: None)
        with pytest.raises(gancore.ConfigError) as exc:
            build_run(parsed(self.HUGE, registry))
        (problem,) = exc.value.problems
        assert problem.startswith("critic 'dcgan': ran out of memory while building it (")
        assert "can't allocate memory" in problem

    def test_network_that_fits_builds_unchanged(
        self, registry: gancore.Registry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The estimate draws no random numbers: weights are those of a build without it."""
        small = self.HUGE | {"critic": {"name": "dcgan", "channels": 4}}
        with_estimate = build_run(parsed(small, registry)).critics["critic"]
        monkeypatch.setattr("gancore._config.available_memory", lambda: None)
        without = build_run(parsed(small, registry)).critics["critic"]
        for a, b in zip(with_estimate.parameters(), without.parameters(), strict=True):
            assert torch.equal(a, b)


def test_config_error_survives_pickling() -> None:
    """A ConfigError raised in a worker process comes back whole (a process pool pickles it)."""
    import pickle

    from gancore._errors import ConfigError

    error = ConfigError(["a.b: expected an int (got 'x')", "c: unknown key"], source="run.toml")
    back = pickle.loads(pickle.dumps(error))
    assert isinstance(back, ConfigError)
    assert back.problems == error.problems and back.source == "run.toml"
    assert str(back) == str(error)
