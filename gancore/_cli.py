"""The ``gan`` command line (also ``python -m gancore``).

User mistakes (a bad config, a missing file, a damaged checkpoint) print one line per problem and
exit with status 2 (1 for a run that had to stop); never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from gancore._errors import (
    AmbiguousComponentError,
    CheckpointError,
    ConfigError,
    PluginError,
    TrainingError,
    UnknownComponentError,
)
from gancore._plugins import PluginWarning
from gancore._registry import CommandSpec, SampleOptionSpec

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

_USAGE_CODE = (
    "a usage error: bad arguments, an invalid run file or option, a missing, damaged or wrong "
    "file, an unknown component; one 'error:' line per problem, no traceback"
)
_BUG_CODE = "an unexpected error (a bug: Python prints a traceback; please report it)"
_HELP_WIDTH = 88


def _fill(text: str, indent: str = "", hanging: str = "") -> str:
    """``text`` wrapped for --help (whose raw formatter keeps line breaks as given)."""
    return textwrap.fill(
        text,
        _HELP_WIDTH,
        initial_indent=indent,
        subsequent_indent=hanging,
        break_on_hyphens=False,  # keeps names such as gan-stylegan whole
    )


def _wrapped(code: int, text: str) -> str:
    return _fill(text, f"  {code:<5}", " " * 7)


def _epilog(
    examples: Sequence[str], failed: str | None = None, stopped: str = "stopped by Ctrl-C"
) -> str:
    """The end of a command's --help: ``examples`` (``gan ...`` lines, each with an optional
    ``  # comment``) and the exit codes the command returns (``failed``: what status 1 means
    besides a bug)."""
    lines = ["Examples:", *(f"  {example}" for example in examples), ""] if examples else []
    lines += ["Exit codes:", _wrapped(0, "success")]
    lines.append(_wrapped(1, f"{failed}; or {_BUG_CODE}" if failed else _BUG_CODE))
    lines.append(_wrapped(EXIT_USAGE, _USAGE_CODE))
    lines.append(_wrapped(EXIT_INTERRUPTED, stopped))
    return "\n".join(lines)


def _command(
    sub: Any,
    name: str,
    help: str,
    description: str,
    examples: Sequence[str],
    failed: str | None = None,
    stopped: str = "stopped by Ctrl-C",
) -> argparse.ArgumentParser:
    """A subcommand whose --help has ``description``, ``examples`` and the exit codes."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=_fill(description),
        epilog=_epilog(examples, failed, stopped),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _parser(
    commands: Mapping[str, CommandSpec] | None = None,
    sample_options: Mapping[str, SampleOptionSpec] | None = None,
) -> argparse.ArgumentParser:
    """The ``gan`` parser: the built-in commands, then ``commands`` contributed by plugins;
    ``gan sample`` has the ``sample_options`` plugins contributed besides its own."""
    parser = argparse.ArgumentParser(
        prog="gan",
        description="Train and use generative adversarial networks, built from plugins.",
        epilog=_epilog(
            [
                "gan train examples/digits-dcgan.toml",
                "gan sample runs/digits-dcgan --num 16",
                "gan COMMAND --help                      # a command's options and examples",
            ],
            failed="gan train: the run had to stop (see gan train --help)",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _command(
        sub,
        "train",
        "train from a TOML run file (or resume a run)",
        "Train from a TOML run file into a run directory (config.toml, checkpoints/, samples/, "
        "metrics.jsonl), or continue a run with --resume. Ctrl-C or SIGTERM stops after a "
        "checkpoint of the last finished iteration. See docs/training.md.",
        [
            "gan train examples/digits-dcgan.toml",
            "gan train examples/digits-dcgan.toml --set training.batch_size=32 --run-dir runs/b32",
            "gan train --resume runs/digits-dcgan --set run.steps=4000   # train on",
        ],
        failed="the run had to stop: too many non-finite losses in a row, or a file of the run "
        "directory could not be written",
        stopped="stopped by Ctrl-C or SIGTERM (after a checkpoint, once the loop runs); go on "
        "with gan train --resume RUN_DIR",
    )
    p.add_argument("config", nargs="?", help="the run's TOML file (not needed with --resume)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.batch_size=32 (repeatable)",
    )
    p.add_argument("--run-dir", type=Path, help="run directory (default: run.output_dir/run.name)")
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its newest checkpoint",
    )
    p.add_argument(
        "--fallback",
        action="store_true",
        help="with --resume: if the newest checkpoint is damaged, use the previous one",
    )
    p.add_argument(
        "--progress",
        choices=["auto", "bar", "lines"],
        default="auto",
        help="progress display (default: a bar on a terminal, plain lines otherwise)",
    )

    p = _command(
        sub,
        "sample",
        "write samples of a trained run or an exported generator",
        "Write a PNG grid of samples of a trained run (its EMA generator unless --raw), or of a "
        "generator exported with `gan export` (a .safetensors file: no run directory or data "
        "needed). The same --seed gives the same samples. Conditional tasks draw one row per "
        "class, or --num samples of one --class.",
        [
            "gan sample runs/digits-dcgan --num 16 --seed 3",
            "gan sample generator.safetensors --out grid.png   # an exported generator",
            "gan sample runs/conditional-digits --class 7 --num 16   # one class of a conditional run",
        ],
    )
    p.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN",
        help="a run directory, or a generator file written by `gan export`",
    )
    p.add_argument("--num", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    p.add_argument(
        "--out",
        type=Path,
        help="output PNG (default RUN/samples/sample-SEED.png; for an exported file "
        "samples/sample-SEED.png in the current directory)",
    )
    p.add_argument(
        "--checkpoint",
        default="latest",
        help="latest (default), best, or step-NNNNNNN (a run directory only)",
    )
    p.add_argument("--raw", action="store_true", help="use the trained generator, not the EMA")
    p.add_argument(
        "--class",
        dest="class_",
        metavar="K",
        help="conditional tasks: --num samples of one class, by name or index (names from the "
        "run's classes.json); without it a conditional task draws one row per class",
    )
    _add_sample_options(p, sample_options or {})

    p = _command(
        sub,
        "export",
        "write a run's generator to one file that samples without the run or its data",
        "Write the generator of a run's checkpoint (the EMA generator when the run keeps one, "
        "unless --raw) to one .safetensors file. Its metadata holds the resolved config, the "
        "data's shapes and class names, the gancore version and the plugins the generator "
        "needs, so `gan sample FILE`, `gan interpolate FILE` and gancore.load_generator(FILE) "
        "work without the run directory or the training data. See "
        "docs/using_a_trained_model.md.",
        [
            "gan export runs/digits-dcgan --out generator.safetensors",
            "gan export runs/digits-dcgan --checkpoint best --out best.safetensors",
            "gan sample generator.safetensors --num 16     # anywhere, without the data",
        ],
    )
    p.add_argument("run_dir", type=Path, metavar="RUN", help="the run directory")
    p.add_argument(
        "--out",
        type=Path,
        help="the .safetensors file to write (default: RUN_NAME.safetensors here)",
    )
    p.add_argument("--checkpoint", default="latest", help="latest (default), best, or step-NNNNNNN")
    p.add_argument("--raw", action="store_true", help="the trained generator, not the EMA")

    p = _command(
        sub,
        "report",
        "write a run's HTML report (or one page comparing runs)",
        "Write one self-contained HTML page for a run directory: summary, interactive curves "
        "(hover, zoom, log scale; stage boundaries marked), the sample grids over time with a "
        "slider beside the real images, the metrics with their protocols, the environment and "
        "the resolved config. It opens without a network. `gan train` writes RUN/report.html "
        "at the end of a run (training.report, training.report_every). With several runs, one "
        "page compares them. See docs/run_report.md.",
        [
            "gan report runs/digits-dcgan                  # runs/digits-dcgan/report.html",
            "gan report runs/a runs/b --out compare.html   # two runs on one page",
        ],
    )
    from gancore._report import add_arguments as add_report_arguments

    add_report_arguments(p)

    p = _command(
        sub,
        "interpolate",
        "write a latent walk between seeds as a GIF, MP4 or PNG strip",
        "Walk through the latent space between the samples of --seeds (for an unconditional "
        "run, the first sample of `gan sample --seed S`), --steps frames per segment, linearly or along the great circle "
        "(--spherical, the right path between Gaussian latents), in z or, for a generator "
        "with a mapping network (StyleGAN's), in w. Writes an animated GIF that loops, an MP4 "
        "(needs imageio-ffmpeg) or a PNG strip, one column per frame. A conditional task walks "
        "every class along the same path (one tile per class), or one --class. RUN is a run "
        "directory or a file written by `gan export`.",
        [
            "gan interpolate runs/digits-dcgan --out walk.gif",
            "gan interpolate generator.safetensors --seeds 0 5 9 0 --steps 24 --spherical "
            "--out loop.gif",
            "gan interpolate runs/stylegan2-digits --space w --out walk-w.mp4",
            "gan interpolate runs/conditional-digits --class 3 --out strip.png",
        ],
    )
    p.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN",
        help="a run directory, or a generator file written by `gan export`",
    )
    p.add_argument(
        "--out",
        type=Path,
        help=".gif, .mp4 or .png (default RUN/samples/walk-SPACE-SEEDS.gif; for an exported "
        "file under samples/ in the current directory)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2, 3],
        metavar="S",
        help="the seeds to walk through, in order (default 0 1 2 3; repeat the first at the end "
        "for a seamless loop)",
    )
    p.add_argument("--steps", type=int, default=16, help="frames per segment (default 16)")
    p.add_argument(
        "--space",
        choices=["z", "w"],
        default="z",
        help="interpolate the latents z (default), or w = mapping(z) of a generator that has "
        "mapping(z) and synthesis(w) (StyleGAN)",
    )
    p.add_argument(
        "--spherical",
        action="store_true",
        help="spherical interpolation (slerp) instead of linear; recommended in z",
    )
    p.add_argument(
        "--class",
        dest="class_",
        metavar="K",
        help="conditional tasks: walk this class only, by name or index (default: every class)",
    )
    p.add_argument("--fps", type=float, default=12.0, help="frames per second (default 12)")
    p.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="enlarge GIF and MP4 frames N times (default: to at least 128 px)",
    )
    p.add_argument("--checkpoint", default="latest", help="latest (default), best, or step-NNNNNNN")
    p.add_argument("--raw", action="store_true", help="use the trained generator, not the EMA")

    p = _command(
        sub,
        "eval",
        "evaluate metrics on a trained run, print the JSON result",
        "Score a trained run's generator (EMA unless --raw) and print one JSON object: "
        "'<metric>.<value>' numbers and '<metric>.protocol', what produced them. See "
        "docs/metrics.md.",
        [
            "gan eval runs/digits-dcgan",
            "gan eval runs/digits-dcgan --metric fid --num 2000 --out fid.json",
            "gan eval runs/other --compare fid.json   # refuses (2) if the protocols differ",
        ],
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME",
        help="metric name (repeatable; default: the run's configured metrics); a metric the run "
        "configures keeps its options from config.toml, others start from their defaults",
    )
    p.add_argument(
        "--ref",
        metavar="DATA",
        help="real data to compare with: a TOML file with a [data] table (a run file will do), "
        "or an inline table such as \"{name = 'digits', resolution = 16}\"; default: the run's "
        "own dataset",
    )
    p.add_argument(
        "--num",
        type=int,
        metavar="N",
        help="generated samples per metric (sets num_generated, or num_samples)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metric option, e.g. --set extractor='digits-classifier' (applies to every metric "
        "that has the option; an option no metric has is an error)",
    )
    p.add_argument("--checkpoint", default="latest", help="latest (default), best, or step-NNNNNNN")
    p.add_argument("--raw", action="store_true", help="use the trained generator, not the EMA")
    p.add_argument(
        "--compare",
        type=Path,
        metavar="OTHER.json",
        help="a result saved from an earlier `gan eval`: add the differences, or refuse (exit 2) "
        "when a metric's protocol differs",
    )
    p.add_argument(
        "--per-class",
        action="store_true",
        help="conditional tasks: also score each class alone (generated and real samples of that "
        "class; intra-class FID), under 'per_class' by class name, and their mean",
    )
    p.add_argument("--out", type=Path, help="also write the JSON result to this file")

    p = _command(
        sub,
        "plugins",
        "list plugin distributions and what they registered",
        "List the installed plugin distributions: version, whether each loaded (or why not) and "
        "the components it registered.",
        ["gan plugins", "gan plugins --json"],
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = _command(
        sub,
        "components",
        "list registered components and their options",
        "List the registered components (generators, critics, losses, ...) with the plugin that "
        "provides each and their options with defaults and documentation.",
        ["gan components", "gan components generator", "gan components loss --json"],
    )
    p.add_argument("kind", nargs="?", help="only this kind (generator, critic, loss, ...)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = _command(
        sub,
        "plugin",
        "tools for plugin authors: gan plugin new NAME",
        "Tools for plugin authors. `gan plugin new NAME` creates a plugin distribution that "
        "passes its own tests. See docs/writing_plugins.md.",
        ["gan plugin new gan-noise", "gan plugin new --help"],
    )
    plugin_sub = p.add_subparsers(dest="plugin_command", metavar="ACTION", required=True)
    q = _command(
        plugin_sub,
        "new",
        "create a plugin distribution that passes its own tests",
        "Create DIR/NAME: a pyproject.toml with the gancore entry point, the package "
        "with plugin.py and one example component (a loss), a README, tests that use "
        "gancore.testing, an example run file and a tox.ini. See docs/writing_plugins.md.",
        [
            "gan plugin new gan-noise",
            "gan plugin new gan-noise --dir plugins   # creates plugins/gan-noise",
        ],
    )
    q.add_argument("name", metavar="NAME", help="distribution name, kebab-case, e.g. gan-noise")
    q.add_argument("--dir", type=Path, default=Path("."), help="where to create it (default: here)")

    p = _command(
        sub,
        "config",
        "validate or show a run file",
        "Check a run file without training (`validate`: every problem, one line each), or print "
        "it fully resolved, defaults filled in, as the run directory's config.toml would hold "
        "it (`show`).",
        ["gan config validate examples/digits-dcgan.toml", "gan config show run.toml"],
    )
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    for name, text, description in (
        (
            "validate",
            "check a run file; print every problem",
            "Check a run file against the registered components: every problem on one line "
            "(key path, what was expected, what was given), or 'FILE: ok'.",
        ),
        (
            "show",
            "print the fully resolved config as TOML",
            "Print the run file fully resolved as TOML: every default filled in and components "
            "by qualified name, as the run directory's config.toml will hold it.",
        ),
    ):
        q = _command(
            config_sub,
            name,
            text,
            description,
            [
                f"gan config {name} examples/digits-dcgan.toml",
                f"gan config {name} run.toml --set training.batch_size=32",
            ],
        )
        q.add_argument("config", type=Path)
        q.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config value (repeatable)",
        )

    for spec in (commands or {}).values():
        if spec.configure is not None:
            try:  # on a scratch parser first: a faulty plugin must not take the command line down
                spec.configure(argparse.ArgumentParser(prog=f"gan {spec.name}"))
            except Exception as exc:
                import warnings

                warnings.warn(
                    f"plugin {spec.provider!r}: command {spec.name!r} could not add its "
                    f"arguments: {type(exc).__name__}: {exc}",
                    PluginWarning,
                    stacklevel=2,
                )
                continue
        q = sub.add_parser(
            spec.name,
            help=f"{spec.description} [{spec.provider}]",
            description=_fill(f"{spec.description} (from plugin {spec.provider})"),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if spec.configure is not None:
            spec.configure(q)
        # The plugin's own epilog (its examples), then the exit codes, which main() decides.
        q.epilog = "\n\n".join(filter(None, [q.epilog, _epilog([])]))
        q.set_defaults(_plugin_command=spec)
    return parser


def _add_sample_options(
    parser: argparse.ArgumentParser, options: Mapping[str, SampleOptionSpec]
) -> None:
    """Add the plugins' options to ``gan sample``; the ones added are ``args._sample_options``."""
    added = []
    for option in options.values():
        try:
            parser.add_argument(
                option.flag, help=f"{option.help} [{option.provider}]", **option.argument
            )
        except argparse.ArgumentError as exc:  # a flag gan sample gained after the plugin
            import warnings

            warnings.warn(
                f"plugin {option.provider!r}: sample option {option.flag!r} could not be "
                f"added: {exc}",
                PluginWarning,
                stacklevel=2,
            )
            continue
        added.append(option)
    parser.set_defaults(_sample_options=tuple(added))


def _one_line_warnings() -> None:
    """Warnings meant for users (a plugin that failed to load) as one plain line each."""
    import warnings

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    """``gan``: the exit status of the command. Ctrl-C outside a training loop (which handles
    its own signals: docs/training.md) ends the command with one line and status 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("stopped by Ctrl-C (SIGINT)", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    _one_line_warnings()
    from gancore._plugins import get_registry

    try:
        registry = get_registry()
    except PluginError as exc:  # the built-ins, or any plugin in strict mode
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    parser = _parser(registry.commands, registry.sample_options)
    args = parser.parse_args(argv)
    if args.version:
        from gancore import __version__

        print(f"gancore {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        plugin_command = getattr(args, "_plugin_command", None)
        if plugin_command is not None:
            return int(plugin_command.run(args) or 0)
        return int(_COMMANDS[args.command](args) or 0)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except (
        UnknownComponentError,
        AmbiguousComponentError,
        CheckpointError,
        PluginError,
        FileNotFoundError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as exc:  # a component refusing its inputs (shapes, sizes) at build time
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


# -------------------------------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    from gancore._config import load_config
    from gancore._runlock import LOCK_FILE
    from gancore._train import end_processes, train

    if args.resume is not None:
        run_dir = args.resume
        config_file = run_dir / "config.toml"
        if args.config is not None:
            raise ConfigError(
                [
                    "give either CONFIG or --resume RUN_DIR, not both (a resumed run "
                    "uses RUN_DIR/config.toml; change values with --set)"
                ]
            )
        if not config_file.is_file():
            raise ConfigError([f"{str(run_dir)!r} is not a run directory (no config.toml)"])
        config = load_config(config_file, args.overrides)
    else:
        if args.config is None:
            raise ConfigError(["missing CONFIG: gan train RUN.toml (or --resume RUN_DIR)"])
        config = load_config(args.config, args.overrides)
        run_dir = args.run_dir or Path(config.run.output_dir) / config.run.name
        # A lone lock file is what a run killed during start-up leaves: the lock decides.
        if run_dir.exists() and any(p.name != LOCK_FILE for p in run_dir.iterdir()):
            raise ConfigError(
                [
                    f"run directory {str(run_dir)!r} already exists and is not empty; continue it "
                    f"with `gan train --resume {run_dir}`, or choose another --run-dir or run.name"
                ]
            )
    progress = {"auto": None, "bar": True, "lines": False}[args.progress]
    result = train(
        config, run_dir, resume=args.resume is not None, fallback=args.fallback, progress=progress
    )
    end_processes()
    return EXIT_INTERRUPTED if result.interrupted else 0


def _load(args: argparse.Namespace) -> tuple[Any, bool]:
    """(the loaded run or exported generator ``args.run_dir`` names, True for an exported
    file), with ``--checkpoint`` and ``--raw``."""
    from gancore._export import load_generator
    from gancore._inference import load_run

    path: Path = args.run_dir
    if path.is_file():
        if args.checkpoint != "latest":
            raise ConfigError(
                [f"--checkpoint: {str(path)!r} is an exported generator, with one checkpoint"]
            )
        run = load_generator(path)
        if args.raw and run.generator_kind != "raw":
            raise ConfigError(
                [
                    f"--raw: {str(path)!r} holds the {run.generator_kind} generator only; "
                    "export the trained one with `gan export --raw`"
                ]
            )
        return run, True
    if not path.exists():
        raise ConfigError([f"no such run directory or exported generator {str(path)!r}"])
    return load_run(path, args.checkpoint, raw=args.raw), False


def _cmd_sample(args: argparse.Namespace) -> int:
    from gancore._classes import (
        class_index,
        dataset_classes,
        is_conditional,
        load_classes,
        require_conditional,
    )
    from gancore._pictures import save_samples

    if args.num < 1:
        raise ConfigError([f"--num: must be >= 1 (got {args.num})"])
    given = _given_sample_options(args)  # plugins' options (gan-stylegan's --truncation, ...)
    picture = next((o.picture for o in given if o.picture is not None), None)
    if args.class_ is not None and picture is not None:
        flag = next(o.flag for o in given if o.picture is not None)
        raise ConfigError([f"--class: cannot be combined with {flag}"])
    run, exported = _load(args)
    # An exported file's pictures go to samples/ here: the options of plugins write to
    # args.run_dir / "samples" by default too.
    samples = Path("samples") if exported else args.run_dir / "samples"
    if exported:
        args.run_dir = Path(".")
    label = None
    # A run trained before classes.json existed still has its data's names; an exported
    # file's are in its metadata.
    classes = (None if exported else load_classes(args.run_dir)) or dataset_classes(
        run.built.dataset
    )
    if args.class_ is not None:
        require_conditional(run.built.task, run.config.task.spec.name, "--class")
        label = class_index(classes, args.class_)
    notes = [note for o in given if o.adjust is not None and (note := o.adjust(run, args))]
    title = f"{run.config.run.name} ({run.checkpoint.name}, seed {args.seed}"
    title += "".join(f", {note}" for note in notes)
    if picture is not None:  # the option draws the whole picture
        print(picture(run, args))
        return 0
    if not is_conditional(run.built.task):
        images = run.generate(args.num, args.seed)
        out = args.out or samples / f"sample-{args.seed}.png"
        stage = run.stage_note(images)  # a staged run: its stage and resolution
        save_samples(images, out, reference=run.reference(), title=title + ")", header=stage)
        print(f"wrote {out}" + (f" ({stage})" if stage else ""))
        return 0
    # A conditional task: one class (--class), or one row per class named on the grid.
    images, columns, rows = run.sample_grid(args.num, args.seed, label, classes)
    header = run.stage_note(images)
    name = f"sample-{args.seed}.png"
    if label is not None:
        header = ", ".join(
            filter(None, [f"class {classes[label] if classes is not None else label}", header])
        )
        name = f"sample-{args.seed}-class-{label}.png"
    out = args.out or samples / name
    save_samples(
        images,
        out,
        columns,
        reference=run.reference(),
        title=title + ")",
        row_names=rows,
        header=header,
    )
    print(f"wrote {out}" + (f" ({header})" if header else ""))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from gancore._export import export_generator

    if not args.run_dir.is_dir():
        raise ConfigError([f"{str(args.run_dir)!r} is not a run directory"])
    out = args.out
    if out is None:
        from gancore._config import load_config

        config_file = args.run_dir / "config.toml"
        if not config_file.is_file():
            raise ConfigError([f"{str(args.run_dir)!r} is not a run directory (no config.toml)"])
        out = Path(f"{load_config(config_file).run.name}.safetensors")
    meta = export_generator(args.run_dir, out, args.checkpoint, raw=args.raw)
    size = out.stat().st_size
    print(
        f"wrote {out} ({size / 2**20:.1f} MiB): the {meta['generator_kind']} generator of "
        f"{meta['run']} at {meta['checkpoint']}"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from gancore._report import run_command

    return run_command(args)


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from gancore._classes import class_index, dataset_classes, require_conditional
    from gancore._interpolate import check_output, walk, walk_labels, write_walk

    if args.out is not None:  # a wrong extension or a missing MP4 writer: before any work
        check_output(args.out, args.fps, args.scale)
    run, exported = _load(args)
    label = None
    if args.class_ is not None:
        require_conditional(run.built.task, run.config.task.spec.name, "--class")
        label = class_index(dataset_classes(run.built.dataset), args.class_)
    labels, names = walk_labels(run, label)
    seeds = "-".join(str(s) for s in args.seeds)
    samples = Path("samples") if exported else args.run_dir / "samples"
    out = args.out or samples / f"walk-{args.space}-{seeds}.gif"
    frames = walk(
        run, args.seeds, args.steps, space=args.space, spherical=args.spherical, labels=labels
    )
    count = write_walk(
        frames,
        out,
        fps=args.fps,
        scale=args.scale,
        row_names=names,
        task_name=run.config.task.spec.name,
    )
    path = "spherical" if args.spherical else "linear"
    print(
        f"wrote {out} ({count} frames, {path} in {args.space}, seeds {' '.join(map(str, args.seeds))})"
    )
    return 0


def _given_sample_options(args: argparse.Namespace) -> list[SampleOptionSpec]:
    """The plugin options of ``gan sample`` on the command line, each with the flag it needs."""
    options = {o.flag: o for o in getattr(args, "_sample_options", ())}
    given = [o for o in options.values() if o.given(args)]
    for option in given:
        needed = options.get(option.requires) if option.requires else None
        if option.requires and (needed is None or not needed.given(args)):
            metavar = needed.argument.get("metavar") if needed is not None else None
            wanted = f"{option.requires} {metavar}" if metavar else option.requires
            raise ConfigError([f"{option.flag}: needs {wanted}"])
    pictures = [o.flag for o in given if o.picture is not None]
    if len(pictures) > 1:
        raise ConfigError([f"{' and '.join(pictures)}: each draws the whole picture; give one"])
    return given


def _eval_metrics(config: Any, names: Sequence[str]) -> list[Any]:
    """The metrics ``gan eval`` runs: the run's own, or ``names`` (with the run's options for a
    metric it configures, defaults otherwise)."""
    from gancore._config import Component
    from gancore._plugins import get_registry

    configured = list(config.metrics)
    if not names:
        return configured
    registry = get_registry()
    metrics = []
    for name in names:
        spec = registry.get("metric", name)
        same = [m for m in configured if m.spec.qualified_name == spec.qualified_name]
        metrics.append(
            same[0]
            if same
            else Component(spec=spec, options=spec.options(), registry=registry, path=name)
        )
    return metrics


def _metric_overrides(metrics: list[Any], overrides: Sequence[str], num: int | None) -> list[Any]:
    """``--set`` options and ``--num`` applied to every metric that has them."""
    from gancore._config import apply_overrides, structure_options
    from gancore._names import did_you_mean

    table = apply_overrides({}, overrides)
    problems: list[str] = []
    known: set[str] = set()
    for m in metrics:
        known |= {f.alias or f.name for f in attrs.fields(type(m.options)) if f.init}
    for key in table:
        if key not in known:
            problems.append(
                f"--set {key}: no metric here has this option{did_you_mean(key, sorted(known))}; "
                f"options: {', '.join(sorted(known))}"
            )
    changed = []
    for m in metrics:
        fields = {f.alias or f.name for f in attrs.fields(type(m.options)) if f.init}
        relevant = {k: v for k, v in table.items() if k in fields}
        if num is not None:
            count_key = next((k for k in ("num_generated", "num_samples") if k in fields), None)
            if count_key is None:
                problems.append(f"--num: metric {m.spec.name!r} has no sample count to set")
            else:
                relevant[count_key] = num
        # The current options as a table; None is what TOML cannot say, so it is left out where
        # it is the default.
        defaults = {f.alias or f.name: f.default for f in attrs.fields(type(m.options)) if f.init}
        current = {
            k: v
            for k, v in attrs.asdict(m.options, recurse=False).items()
            if k in defaults and not (v is None and defaults.get(k) is None)
        }
        options = structure_options(type(m.options), current | relevant, m.spec.name, problems)
        if options is not None:
            changed.append(attrs.evolve(m, options=options))
    if problems:
        raise ConfigError(problems)
    return changed


def _reference_dataset(text: str) -> Any:
    """The dataset ``--ref`` names: an inline TOML table, or a TOML file with a [data] table."""
    import tomllib

    from gancore._config import read_toml, structure_component
    from gancore._plugins import get_registry

    if text.lstrip().startswith("{"):
        try:
            table = tomllib.loads(f"data = {text}")["data"]
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"--ref: not a TOML inline table: {exc}"]) from None
    else:
        document = read_toml(text)
        table = document.get("data", document)
    problems: list[str] = []
    component = structure_component(get_registry(), "dataset", table, "--ref", problems)
    if component is None:
        raise ConfigError(problems)
    dataset = component.build(None)
    if "x" not in dataset.shapes:
        raise ConfigError([f"--ref: dataset {component.spec.name!r} has no samples 'x' to score"])
    return dataset


def _cmd_eval(args: argparse.Namespace) -> int:
    from gancore._inference import load_run
    from gancore._jsonlog import dumps, restore_nonfinite
    from gancore.metrics.protocol import ProtocolMismatchError, compare_results

    if args.num is not None and args.num < 2:
        raise ConfigError([f"--num: must be >= 2 (got {args.num})"])
    other = None
    if args.compare is not None:  # read it first: a typo should not cost an evaluation
        try:
            other = restore_nonfinite(json.loads(args.compare.read_text()))
        except (OSError, ValueError) as exc:
            raise ConfigError([f"--compare: cannot read {str(args.compare)!r}: {exc}"]) from None
        if not isinstance(other, dict):
            raise ConfigError([f"--compare: {str(args.compare)!r} holds no gan eval result"])
    run = load_run(args.run_dir, args.checkpoint, raw=args.raw)
    metrics = _eval_metrics(run.config, args.metric)
    if not metrics:
        raise ConfigError(
            [
                f"{str(args.run_dir)!r} configures no metrics; name one with "
                "--metric NAME (see `gan components metric`)"
            ]
        )
    if args.overrides or args.num is not None:
        metrics = _metric_overrides(metrics, args.overrides, args.num)
    dataset = _reference_dataset(args.ref) if args.ref else None
    classes = _class_names(run, dataset, args.run_dir) if args.per_class else None
    built = [(m.spec.name, m.build(None)) for m in metrics]
    result = run.evaluate(built, dataset=dataset)
    if classes is not None:
        result.update(_per_class(run, built, dataset, classes))
    if args.ref:
        result["reference"] = args.ref
    if other is not None:
        try:
            comparison = compare_results(result, other)
        except ProtocolMismatchError as exc:
            print(f"error: --compare {args.compare}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        result["comparison"] = {"other": str(args.compare), **comparison}
    text = dumps(result, indent=2)  # strict JSON: non-finite values as null, named
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


def _class_names(run: Any, dataset: Any, run_dir: Path) -> tuple[str, ...]:
    """``gan eval --per-class``: the classes to score one by one, checked before any scoring:
    the run's classes.json (else the data's names); the data must carry labels of those classes."""
    from gancore._classes import dataset_classes, load_classes, require_conditional

    require_conditional(run.built.task, run.config.task.spec.name, "--per-class")
    data = dataset if dataset is not None else run.built.dataset
    if "label" not in data.shapes:
        raise ConfigError(
            [
                "--per-class: the data has no 'label' key to select classes by (keys: "
                f"{', '.join(sorted(data.shapes))})"
            ]
        )
    theirs = dataset_classes(data)
    classes = load_classes(run_dir) or theirs
    if classes is None:
        raise ConfigError(
            ["--per-class: this run names no classes (no classes.json, and its data has none)"]
        )
    if theirs is not None and theirs != classes:
        raise ConfigError(
            [
                f"--per-class: the data's classes ({', '.join(theirs)}) are not the run's "
                f"({', '.join(classes)})"
            ]
        )
    return classes


def _per_class(
    run: Any, metrics: list[Any], dataset: Any, classes: Sequence[str]
) -> dict[str, Any]:
    """``{"per_class": {class name: flat results of that class}, "per_class_mean":
    {"<metric>.<value>": mean over the classes}}`` (the mean of per-class FIDs is the
    intra-class FID)."""
    per_class: dict[str, Any] = {}
    sums: dict[str, list[float]] = {}
    for label, name in enumerate(classes):
        scores = run.evaluate(metrics, dataset=dataset, label=label)
        scores = {k: v for k, v in scores.items() if k not in ("run", "checkpoint")}
        per_class[name] = scores
        for key, value in scores.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                sums.setdefault(key, []).append(float(value))
    means = {k: math.fsum(v) / len(v) for k, v in sums.items() if len(v) == len(classes)}
    return {"per_class": per_class, "per_class_mean": means}


def _cmd_plugins(args: argparse.Namespace) -> int:
    from gancore._plugins import plugin_infos

    infos = plugin_infos()
    if args.json:
        print(json.dumps([attrs.asdict(i) for i in infos], indent=2))
        return 0
    for info in infos:
        version = info.version or "unknown version"
        print(f"{info.name} {version}: {info.status}")
        if info.error:
            print(f"  error: {info.error}")
        by_kind: dict[str, list[str]] = {}
        for kind, name in info.components:
            by_kind.setdefault(kind, []).append(name)
        for kind, names in by_kind.items():
            print(f"  {kind}: {', '.join(names)}")
    return 0


def _options_table(spec: Any) -> list[dict[str, Any]]:
    out = []
    for f in attrs.fields(spec.options):
        if not f.init:
            continue
        default: Any
        if f.default is attrs.NOTHING:
            default = "(required)"
        elif isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
            default = f.default.factory()
        else:
            default = f.default
        out.append(
            {
                "name": f.alias or f.name,
                "default": _jsonable(default),
                "type": _type_name(f.type),
                "doc": f.metadata.get("doc", ""),
            }
        )
    return out


def _type_name(tp: Any) -> str:
    text = tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))
    return str(text).replace("typing.", "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if attrs.has(type(value)):
        return attrs.asdict(value)
    return value


def _cmd_components(args: argparse.Namespace) -> int:
    from gancore._plugins import get_registry
    from gancore.protocols import KINDS

    registry = get_registry()
    if args.kind is not None and args.kind not in KINDS:
        from gancore._names import did_you_mean

        raise ConfigError(
            [
                f"unknown kind {args.kind!r}{did_you_mean(args.kind, KINDS)}; kinds: "
                + ", ".join(KINDS)
            ]
        )
    specs = list(registry.specs(args.kind))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "kind": s.kind,
                        "name": s.name,
                        "qualified_name": s.qualified_name,
                        "provider": s.provider,
                        "description": s.description,
                        "options": _options_table(s),
                    }
                    for s in specs
                ],
                indent=2,
            )
        )
        return 0
    kind = None
    for spec in specs:
        if spec.kind != kind:
            kind = spec.kind
            print(f"\n[{kind}]" if kind != specs[0].kind else f"[{kind}]")
        print(f"  {spec.name}  ({spec.provider})  {spec.description}")
        for option in _options_table(spec):
            print(f"      {option['name']} = {option['default']!r}  {option['doc']}")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from gancore._config import config_to_toml, load_config

    config = load_config(args.config, args.overrides)
    if args.config_command == "show":
        sys.stdout.write(config_to_toml(config))
    else:
        print(f"{args.config}: ok")
    return 0


def _cmd_plugin(args: argparse.Namespace) -> int:
    from gancore._scaffold import new_plugin

    root = new_plugin(args.name, args.dir)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    print(f"created {root}: {', '.join(files)}")
    print(f"next: cd {root} && python -m pip install -e . && python -m pytest")
    return 0


_COMMANDS = {
    "train": _cmd_train,
    "sample": _cmd_sample,
    "export": _cmd_export,
    "interpolate": _cmd_interpolate,
    "report": _cmd_report,
    "eval": _cmd_eval,
    "plugins": _cmd_plugins,
    "components": _cmd_components,
    "config": _cmd_config,
    "plugin": _cmd_plugin,
}
