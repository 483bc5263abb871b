"""gancore: a small, plugin-based framework for training generative adversarial networks.

Plugins import only from this module. See docs/ for the concepts and docs/plugin_hooks.md for hooks.
"""

from gancore._checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from gancore._config import Component, RunConfig, config_to_toml, load_config, parse_config
from gancore._errors import (
    AmbiguousComponentError,
    CheckpointError,
    ConfigError,
    PluginError,
    TrainingError,
    UnknownComponentError,
)
from gancore._export import load_generator
from gancore._inference import LoadedRun, load_run
from gancore._pictures import save_grid
from gancore._plugins import (
    PluginInfo,
    PluginWarning,
    get_registry,
    hookimpl,
    load_registry,
    plugin_infos,
    reset_registry,
)
from gancore._registry import (
    CommandSpec,
    ComponentSpec,
    RegisterCallback,
    RegisterCommandCallback,
    RegisterSampleOptionCallback,
    Registry,
    SampleOptionSpec,
)
from gancore._task import BuildContext, SampleGrid, StepContext, TaskBuildContext, Unconditional
from gancore._train import TrainResult, end_processes, train
from gancore.builtin.datasets import limited_indices

__version__ = "0.1.0"
API_VERSION = "1.0"

__all__ = [
    "API_VERSION",
    "AmbiguousComponentError",
    "BuildContext",
    "CheckpointError",
    "CommandSpec",
    "Component",
    "ComponentSpec",
    "ConfigError",
    "LoadedRun",
    "PluginError",
    "PluginInfo",
    "PluginWarning",
    "RegisterCallback",
    "RegisterCommandCallback",
    "RegisterSampleOptionCallback",
    "Registry",
    "RunConfig",
    "SampleGrid",
    "SampleOptionSpec",
    "StepContext",
    "TaskBuildContext",
    "TrainResult",
    "TrainingError",
    "Unconditional",
    "UnknownComponentError",
    "__version__",
    "config_to_toml",
    "end_processes",
    "find_checkpoint",
    "get_registry",
    "hookimpl",
    "limited_indices",
    "load_checkpoint",
    "load_config",
    "load_generator",
    "load_registry",
    "load_run",
    "parse_config",
    "plugin_infos",
    "reset_registry",
    "save_checkpoint",
    "save_grid",
    "train",
]
