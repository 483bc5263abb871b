"""Meta-tests that keep the documentation honest.

- docs/plugin_hooks.md has a section for every hook in gancore.hookspecs and none for a hook that
  does not exist; each section's example runs, registers a component that satisfies its protocol,
  and its TOML snippet configures it; the error texts it quotes are the ones gancore produces.
- tests/test_hooks.py has a test named after every hook.
- docs/config_reference.md is exactly what scripts/config_reference.py generates now, and every key
  it documents has a doc on its field.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import tomllib
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest
import torch
from safetensors.torch import save_file

import gancore
from gancore import hookspecs, protocols
from gancore._config import (
    ALL_SECTIONS,
    COMPONENT_SECTIONS,
    PLAIN_SECTIONS,
    OptimizerConfig,
    StageSection,
)
from gancore._docs import COMPONENT_SECTION_DOCS, OptionRow, _prose, option_rows, section_order
from gancore._registry import COMMAND_HOOK, SAMPLE_OPTION_HOOK, hook_name
from gancore.metrics.extractors import build_extractor

ROOT = Path(__file__).resolve().parent.parent
HOOKS_DOC = ROOT / "docs" / "plugin_hooks.md"
HOOK_TESTS = ROOT / "tests" / "test_hooks.py"
CONFIG_REFERENCE = ROOT / "docs" / "config_reference.md"
REFERENCE_SCRIPT = ROOT / "scripts" / "config_reference.py"

HOOKS = sorted(name for name, obj in vars(hookspecs).items() if hasattr(obj, "gancore_spec"))
KIND_OF_HOOK = {hook_name(kind): kind for kind in protocols.KINDS}
COMPONENT_HOOKS = sorted(KIND_OF_HOOK)  # every hook but those of commands and sample options
COMMAND_LINE_HOOKS = (COMMAND_HOOK, SAMPLE_OPTION_HOOK)  # a shell line, not TOML, shows their use
PROTOCOLS: dict[str, tuple[type, ...]] = {
    "generator": (protocols.Generator,),
    "critic": (protocols.Critic,),
    "loss": (protocols.Loss,),
    "regularizer": (protocols.CriticRegularizer, protocols.GeneratorRegularizer),
    "augmenter": (protocols.Augmenter,),
    "dataset": (protocols.Dataset,),
    "task": (protocols.Task,),
    "metric": (protocols.Metric,),
    "extractor": (protocols.FeatureExtractor,),
}
BASE_RUN = {
    "data": {"name": "toy2d", "size": 64},
    "generator": {"name": "mlp", "hidden": 8, "depth": 1},
    "critic": {"name": "mlp", "hidden": 8, "depth": 1},
}


def hook_sections() -> dict[str, str]:
    """The text of each ``## gancore_...`` section of docs/plugin_hooks.md, by heading."""
    text = HOOKS_DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    return {title.strip(): body for title, body in sections.items() if title.startswith("gancore")}


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.M | re.S)


def example_plugin(hook: str) -> types.ModuleType:
    """The Python blocks of a hook's section, run as one module."""
    module = types.ModuleType(f"example_{hook}")
    source = "\n".join(code_blocks(hook_sections()[hook], "python"))
    exec(compile(source, f"{HOOKS_DOC}#{hook}", "exec"), module.__dict__)
    return module


def load_example(hook: str) -> tuple[gancore.Registry, list[gancore.PluginInfo]]:
    registry, infos = gancore.load_registry(
        entry_points=False, plugins=[("example", example_plugin(hook))], env={}
    )
    assert (infos[-1].name, infos[-1].status, infos[-1].error) == ("example", "loaded", None)
    return registry, infos


def load_script() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("config_reference_script", REFERENCE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -------------------------------------------------------------------------------------------------
# docs/plugin_hooks.md and tests/test_hooks.py against gancore.hookspecs
# -------------------------------------------------------------------------------------------------


class TestHookDocs:
    def test_hookspecs_are_the_registration_hooks(self) -> None:
        """gancore.hookspecs defines one registration hook per component kind, the commands
        hook and the sample options hook."""
        assert sorted([*KIND_OF_HOOK, *COMMAND_LINE_HOOKS]) == HOOKS

    @pytest.mark.parametrize("hook", HOOKS)
    def test_every_hook_has_a_section(self, hook: str) -> None:
        """Each hook has a ``## <hook>`` section with one Python example, and a TOML snippet (a
        shell line for the commands and sample options hooks)."""
        sections = hook_sections()
        assert hook in sections, f"docs/plugin_hooks.md has no '## {hook}' section"
        assert f"```\n{hook}(register)\n```" in sections[hook]
        assert len(code_blocks(sections[hook], "python")) == 1
        usage = "sh" if hook in COMMAND_LINE_HOOKS else "toml"
        assert len(code_blocks(sections[hook], usage)) == 1

    def test_no_section_names_a_missing_hook(self) -> None:
        """Every ``## gancore_...`` section is titled with a hook that exists."""
        assert sorted(set(hook_sections()) - set(HOOKS)) == []

    @pytest.mark.parametrize("hook", HOOKS)
    def test_every_hook_has_a_test(self, hook: str) -> None:
        """tests/test_hooks.py has a test function whose name contains the hook's name."""
        tree = ast.parse(HOOK_TESTS.read_text(encoding="utf-8"))
        tests = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        ]
        assert [name for name in tests if hook in name], f"no test in test_hooks.py names {hook}"


class TestHookExamples:
    @pytest.mark.parametrize("hook", COMPONENT_HOOKS)
    def test_example_registers_its_kind(self, hook: str) -> None:
        """The section's example implements only its hook and registers components of its kind."""
        module = example_plugin(hook)
        implemented = [
            name for name, value in vars(module).items() if hasattr(value, "gancore_impl")
        ]
        assert implemented == [hook]
        registry, infos = load_example(hook)
        kinds = {kind for kind, _ in infos[-1].components}
        assert kinds == {KIND_OF_HOOK[hook]}
        for _, name in infos[-1].components:
            spec = registry.get(KIND_OF_HOOK[hook], name)
            assert spec.provider == "example"
            for field in attrs.fields(spec.options):
                assert str(field.metadata.get("doc", "")).strip(), f"{name}.{field.name}: no doc"

    @pytest.mark.parametrize("hook", COMPONENT_HOOKS)
    def test_example_toml_configures_a_working_component(self, hook: str) -> None:
        """The section's TOML names the example component, and what it builds fits the protocol."""
        kind = KIND_OF_HOOK[hook]
        registry, _ = load_example(hook)
        (snippet,) = code_blocks(hook_sections()[hook], "toml")
        document = BASE_RUN | tomllib.loads(snippet)
        config = gancore.parse_config(document, registry)
        section = next(iter(tomllib.loads(snippet)))
        chosen = getattr(config, section)
        component = chosen[0] if isinstance(chosen, tuple) else chosen
        if kind == "extractor":  # named by a metric's option, built from the weights file below
            assert component.options.extractor == "random-projection"
            return
        assert component.spec.provider == "example"
        dataset = config.data.build(None)
        context = gancore.BuildContext(data_shape=tuple(dataset.shapes["x"]))
        builders: dict[str, Callable[[], Any]] = {
            "generator": gancore.TaskBuildContext(config=config, dataset=dataset).build_generator,
            "critic": gancore.TaskBuildContext(config=config, dataset=dataset).build_critic,
            "dataset": lambda: dataset,
            "task": lambda: component.build(None),
        }
        built = builders.get(kind, lambda: component.build(context))()
        assert isinstance(built, PROTOCOLS[kind])
        if kind == "task":
            generators, critics = built.build(
                gancore.TaskBuildContext(config=config, dataset=dataset)
            )
            assert (list(generators), list(critics)) == (["generator"], ["critic"])
        if kind == "generator":
            assert built(torch.zeros(3, built.latent_dim)).shape == (3, 2)
        if kind == "critic":
            assert built(torch.zeros(3, 2)).shape == (3, 1)

    def test_extractor_example_loads_its_weights_file(self, tmp_path: Path) -> None:
        """The extractor example reads a local file, checks its hash and projects images."""
        registry, infos = load_example("gancore_register_extractors")
        gancore.reset_registry((registry, infos))
        path = tmp_path / "projection.safetensors"
        save_file({"weight": torch.ones(4, 1024)}, str(path))
        extractor = build_extractor("random-projection", weights_path=str(path))
        assert isinstance(extractor, protocols.FeatureExtractor)
        features = extractor(torch.full((2, 3, 8, 8), 0.5))
        # every one of the 32 * 32 resized pixels is 0.5, summed by an all-ones row
        assert features.shape == (2, 4)
        assert torch.allclose(features, torch.full((2, 4), 512.0))
        with pytest.raises(ValueError, match=r"has sha256 [0-9a-f]{64}, expected 00"):
            build_extractor("random-projection", weights_path=str(path), weights_sha256="00")
        with pytest.raises(FileNotFoundError, match="no weights file at"):
            build_extractor("random-projection", weights_path=str(tmp_path / "missing"))


# -------------------------------------------------------------------------------------------------
# The error texts docs/plugin_hooks.md quotes
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PlainLoss:
    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -fake_scores.mean()


def registration_failure(call: Callable[[gancore.RegisterCallback], None]) -> str:
    """The stored error of plugin ``demo`` whose loss hook runs ``call(register)``."""

    @gancore.hookimpl
    def gancore_register_losses(register: gancore.RegisterCallback) -> None:
        call(register)

    module = types.ModuleType("demo")
    module.gancore_register_losses = gancore_register_losses  # type: ignore[attr-defined]
    with pytest.warns(gancore.PluginWarning):
        _, infos = gancore.load_registry(entry_points=False, plugins=[("demo", module)], env={})
    assert infos[-1].error is not None
    prefix = "gancore_register_losses raised PluginError: "
    assert infos[-1].error.startswith(prefix)
    return infos[-1].error.removeprefix(prefix)


def plugin_warning(*plugins: tuple[str, object]) -> str:
    with pytest.warns(gancore.PluginWarning) as record:
        gancore.load_registry(entry_points=False, plugins=list(plugins), env={})
    assert len(record) == 1
    return str(record[0].message)


def wrong_argument() -> types.ModuleType:
    """A plugin whose hook names its argument ``reg``, which the hook does not have (unannotated,
    as the page quotes pluggy's rendering of the signature)."""
    module = types.ModuleType("wrong_argument")
    exec("def gancore_register_losses(reg):\n    pass\n", module.__dict__)
    module.gancore_register_losses = gancore.hookimpl(module.gancore_register_losses)
    return module


class Misspelled:
    @gancore.hookimpl
    def gancore_register_lossses(self, register: gancore.RegisterCallback) -> None:
        """One 's' too many."""


class Empty:
    """A plugin with no hooks."""


def register_twice(register: gancore.RegisterCallback) -> None:
    register("plain", PlainLoss, description="A loss.")
    register("plain", PlainLoss, description="The same loss again.")


def loss_named(name: str) -> Callable[[gancore.RegisterCallback], None]:
    return lambda register: register(name, PlainLoss, description="A loss.")


QUOTED_ERRORS: dict[str, Callable[[], str]] = {
    "kebab-case": lambda: registration_failure(loss_named("WGAN_GP")),
    "options": lambda: registration_failure(
        lambda register: register("plain", PlainLoss, options=dict, description="x")
    ),
    "callable": lambda: registration_failure(
        lambda register: register("plain", 42, options=PlainLoss, description="x")  # type: ignore[arg-type]
    ),
    "description": lambda: registration_failure(
        lambda register: register("plain", PlainLoss, description="two\nlines")
    ),
    "twice": lambda: registration_failure(register_twice),
    "misspelled hook": lambda: plugin_warning(("typo", Misspelled())),
    "wrong argument": lambda: plugin_warning(("wrong-arg", wrong_argument())),
    "same name": lambda: plugin_warning(("demo", Empty()), ("demo", Empty())),
}


class TestQuotedErrors:
    @pytest.mark.parametrize("mistake", sorted(QUOTED_ERRORS))
    def test_error_text_is_quoted_exactly(self, mistake: str) -> None:
        """The message gancore produces for the mistake appears verbatim in the hooks page."""
        message = QUOTED_ERRORS[mistake]()
        assert f"`{message}`" in HOOKS_DOC.read_text(encoding="utf-8")

    def test_lookup_errors_are_quoted_exactly(self) -> None:
        """The ambiguous-name and unknown-name messages appear verbatim in the hooks page."""

        @gancore.hookimpl
        def gancore_register_losses(register: gancore.RegisterCallback) -> None:
            register("hinge", PlainLoss, description="Collides with the built-in hinge.")

        module = types.ModuleType("collide")
        module.gancore_register_losses = gancore_register_losses  # type: ignore[attr-defined]
        registry, _ = gancore.load_registry(
            entry_points=False, plugins=[("gancore-test-collide", module)], env={}
        )
        builtin_only, _ = gancore.load_registry(entry_points=False, env={})
        text = HOOKS_DOC.read_text(encoding="utf-8")
        for reg, name in ((registry, "hinge"), (builtin_only, "hinj"), (builtin_only, "wgan")):
            with pytest.raises(LookupError) as exc:
                reg.get("loss", name)
            assert f"loss.name: {exc.value}\n" in text

    def test_network_factory_error_is_quoted_exactly(self) -> None:
        """A generator factory that returns None fails with the message the page quotes."""
        module = example_plugin("gancore_register_generators")
        module.build_linear_generator = lambda options, context: None
        registry, _ = gancore.load_registry(entry_points=False, plugins=[("demo", module)], env={})
        config = gancore.parse_config(BASE_RUN | {"generator": {"name": "linear"}}, registry)
        context = gancore.TaskBuildContext(config=config, dataset=config.data.build(None))
        with pytest.raises(ValueError, match="factory returned NoneType") as exc:
            context.build_generator()
        assert f"`ValueError: {exc.value}`" in HOOKS_DOC.read_text(encoding="utf-8")


# -------------------------------------------------------------------------------------------------
# docs/config_reference.md
# -------------------------------------------------------------------------------------------------


class TestConfigReference:
    def test_reference_is_up_to_date(self) -> None:
        """docs/config_reference.md is exactly what scripts/config_reference.py generates."""
        expected = load_script().render()
        current = CONFIG_REFERENCE.read_text(encoding="utf-8")
        assert current == expected, (
            "docs/config_reference.md is stale: run `python scripts/config_reference.py`"
        )

    def test_script_writes_and_checks(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The script writes the page, then ``--check`` passes; a changed page fails the check."""
        script = load_script()
        out = tmp_path / "reference.md"
        assert script.main(["--out", str(out)]) == 0
        assert out.read_text(encoding="utf-8") == CONFIG_REFERENCE.read_text(encoding="utf-8")
        assert script.main(["--out", str(out), "--check"]) == 0
        out.write_text("stale\n", encoding="utf-8")
        assert script.main(["--out", str(out), "--check"]) == 1
        assert "stale; run python scripts/config_reference.py" in capsys.readouterr().err

    def test_reference_ignores_installed_plugins(self) -> None:
        """Components of other plugins stay out of the page, whatever is installed."""

        @gancore.hookimpl
        def gancore_register_losses(register: gancore.RegisterCallback) -> None:
            register("plugin-loss", PlainLoss, description="From a plugin.")

        module = types.ModuleType("other")
        module.gancore_register_losses = gancore_register_losses  # type: ignore[attr-defined]
        registry, _ = gancore.load_registry(entry_points=False, plugins=[("other", module)], env={})
        from gancore._docs import config_reference

        assert config_reference(registry) == CONFIG_REFERENCE.read_text(encoding="utf-8")

    def test_every_section_is_rendered(self) -> None:
        """The page covers every section a run file may have, each with its heading."""
        assert sorted(section_order()) == sorted(ALL_SECTIONS)
        assert sorted(COMPONENT_SECTION_DOCS) == sorted(s for s, *_ in COMPONENT_SECTIONS)
        text = CONFIG_REFERENCE.read_text(encoding="utf-8")
        for section, _kind, _default, is_list in COMPONENT_SECTIONS:
            header = f"[[{section}]]" if is_list else f"[{section}]"
            assert f"\n### `{header}`\n" in text
        for section in PLAIN_SECTIONS:
            assert f"\n### `[{section}]`\n" in text
        assert (
            "\n### `[optimizers.generator]`, `[optimizers.critic]`, `[optimizers.<group>]`\n"
            in text
        )
        assert "\n### `[[stages]]`\n" in text

    @pytest.mark.parametrize(
        "cls",
        [*PLAIN_SECTIONS.values(), OptimizerConfig, StageSection],
        ids=lambda cls: cls.__name__,
    )
    def test_every_config_field_is_documented(self, cls: type) -> None:
        """Every key of the run, training and optimizer sections has a doc on its field."""
        missing = [
            f.name
            for f in attrs.fields(cls)
            if f.init and not str(f.metadata.get("doc", "")).strip()
        ]
        assert missing == []

    def test_every_builtin_option_is_documented(self) -> None:
        """Every option of every built-in component has a doc on its field."""
        registry, _ = gancore.load_registry(entry_points=False, env={})
        missing = [
            f"{spec.kind} {spec.name!r}: {field.name}"
            for spec in registry.specs()
            if spec.provider == "gancore"
            for field in attrs.fields(spec.options)
            if field.init and not str(field.metadata.get("doc", "")).strip()
        ]
        assert missing == []

    def test_every_builtin_component_is_listed(self) -> None:
        """Each built-in component has a heading and each of its options a row."""
        registry, _ = gancore.load_registry(entry_points=False, env={})
        text = CONFIG_REFERENCE.read_text(encoding="utf-8")
        for spec in registry.specs():
            assert f"\n#### `{spec.name}`\n\n{_prose(spec.description)}\n" in text
            for row in option_rows(spec.options):
                assert f"| `{row.key}` | {_prose(row.type)} | " in text


@attrs.frozen(kw_only=True)
class Sample:
    """A class with one field of each kind the renderer distinguishes."""

    count: int = attrs.field(metadata={"doc": "how many"})
    scale: float | None = attrs.field(default=None, metadata={"doc": "None = 1"})
    mode: Literal["a", "b"] = attrs.field(default="a", metadata={"doc": "which"})
    sizes: tuple[int, ...] = attrs.field(default=(4, 8), metadata={"doc": "sizes"})
    pair: tuple[float, float] = attrs.field(default=(0.5, 0.999), metadata={"doc": "betas"})
    extra: dict[str, Any] = attrs.field(factory=dict, metadata={"doc": "x | y"})
    enabled: bool = attrs.field(default=True, metadata={"doc": "2*pi*r, <x>, `a*b|c`"})
    hidden: int = attrs.field(default=0, init=False)


class TestRendering:
    def test_option_rows(self) -> None:
        """Fields become TOML types and TOML defaults; fields not set in __init__ are left out."""
        assert option_rows(Sample) == [
            OptionRow(key="count", type="integer", default="required", doc="how many"),
            OptionRow(key="scale", type="float, optional", default="unset", doc="None = 1"),
            OptionRow(key="mode", type='one of "a", "b"', default='`"a"`', doc="which"),
            OptionRow(key="sizes", type="array of integers", default="`[4, 8]`", doc="sizes"),
            OptionRow(key="pair", type="array of 2 floats", default="`[0.5, 0.999]`", doc="betas"),
            OptionRow(key="extra", type="table", default="`{}`", doc="x | y"),
            OptionRow(key="enabled", type="boolean", default="`true`", doc="2*pi*r, <x>, `a*b|c`"),
        ]

    def test_prose_escapes_markdown_outside_code(self) -> None:
        """Emphasis, tags and pipes are escaped in prose; code spans keep their text but pipes."""
        assert _prose("2*pi*r, <x>, `a*b|c`\n  x | y") == r"2\*pi\*r, &lt;x>, `a*b\|c` x \| y"


class TestCommandExample:
    def test_command_example_counts_a_runs_parameters(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The commands hook's example, registered, runs as `gan count-parameters RUN_DIR`."""
        from gancore._cli import main

        registry, infos = load_example(COMMAND_HOOK)
        assert infos[-1].components == [("command", "count-parameters")]
        gancore.reset_registry((registry, infos))
        document = BASE_RUN | {
            "run": {"steps": 1},
            "training": {"batch_size": 8, "sample_every": 0, "num_samples": 4},
        }
        config = gancore.parse_config(document, registry)
        result = gancore.train(config, tmp_path / "run", progress=False)
        counts = {
            name: sum(p.numel() for p in module.parameters())
            for name, module in {**result.generators, **result.critics}.items()
        }
        assert main(["count-parameters", str(tmp_path / "run")]) == 0
        expected = "".join(f"{name}: {count} parameters\n" for name, count in counts.items())
        assert capsys.readouterr().out == expected


class TestSampleOptionExample:
    def test_sample_option_example_scales_the_latents(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The sample options hook's example adds `gan sample --latent-std S`: the generator is
        fed S times the latents, the title says so, and a bad S is one error line."""
        from gancore._cli import main

        registry, infos = load_example(SAMPLE_OPTION_HOOK)
        assert infos[-1].components == [("sample-option", "--latent-std")]
        gancore.reset_registry((registry, infos))
        document = BASE_RUN | {
            "run": {"steps": 1},
            "training": {"batch_size": 8, "sample_every": 0, "num_samples": 4},
        }
        gancore.train(gancore.parse_config(document, registry), tmp_path / "run", progress=False)
        run = gancore.load_run(tmp_path / "run")
        plain = run.generate(8, seed=3)
        module = example_plugin(SAMPLE_OPTION_HOOK)
        args = types.SimpleNamespace(latent_std=0.0)
        with pytest.raises(gancore.ConfigError, match=r"--latent-std: must be in \(0, 1\]"):
            module.scale_latents(run, args)
        assert module.scale_latents(run, types.SimpleNamespace(latent_std=1.0)) == "latent std 1"
        torch.testing.assert_close(run.generate(8, seed=3), plain)
        capsys.readouterr()
        out = tmp_path / "half.png"
        command = ["sample", str(tmp_path / "run"), "--latent-std", "0.5", "--out", str(out)]
        assert main(command) == 0
        assert out.is_file() and capsys.readouterr().out == f"wrote {out}\n"
        assert main(["sample", str(tmp_path / "run"), "--latent-std", "2"]) == 2
        assert capsys.readouterr().err == "error: --latent-std: must be in (0, 1] (got 2)\n"


# Markdown files a reader of the repository is pointed to.
MARKDOWN = sorted(
    [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("plugins/*/README.md")]
)
# Inline links and images: [text](target) and ![alt](target); the target up to a space or ')'.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)")
# Mentions of files that live beside the repository, not in it, in any form.
OUTSIDE = re.compile(r"\.\./shared|REFERENCE\.md|/work/|STYLE\.md|DESIGN\.md")


class TestDocLinks:
    """Docs stand alone: every link resolves inside the repository and no file outside is named."""

    @pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
    def test_links_stay_in_the_repository(self, path: Path) -> None:
        """Relative links name an existing file or folder of the repository; none is absolute."""
        bad = []
        prose = re.sub(r"`[^`\n]*`", "", re.sub(r"(?ms)^```.*?^```", "", path.read_text()))
        for target in LINK.findall(prose):  # code blocks and inline code are not links
            if re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("file:"):
                if "github.com/gancore/gancore" in target:
                    bad.append(f"{target} (link to the repository's own file: make it relative)")
                continue  # a web page (a dependency's documentation)
            file = target.split("#", 1)[0]
            if not file:
                continue  # an anchor in the same page
            resolved = (path.parent / file).resolve()
            if file.startswith(("/", "file:")) or not resolved.is_relative_to(ROOT):
                bad.append(f"{target} (outside the repository)")
            elif not resolved.exists():
                bad.append(f"{target} (no such file)")
        assert bad == []

    @pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
    def test_no_file_outside_is_named(self, path: Path) -> None:
        """No doc sends readers to a file beside the repository (../shared, REFERENCE.md)."""
        lines = path.read_text().splitlines()
        assert [f"{i}: {line}" for i, line in enumerate(lines, 1) if OUTSIDE.search(line)] == []
