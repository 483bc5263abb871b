"""Hook implementations of gan-progressive: the components live in ``networks`` and ``tasks``."""

from __future__ import annotations

from gan_progressive import networks, tasks
from gancore import RegisterCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "pggan",
        networks.build_pggan_generator,
        options=networks.PGGANGeneratorOptions,
        description="PGGAN generator: grows from 4x4, pixel norm, equalized lr (Karras 2018).",
    )


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "pggan",
        networks.build_pggan_critic,
        options=networks.PGGANCriticOptions,
        description="PGGAN critic: grows from 4x4, minibatch stddev, equalized lr (Karras 2018).",
    )


@hookimpl
def gancore_register_tasks(register: RegisterCallback) -> None:
    register(
        "progressive",
        tasks.Progressive,
        description="Progressive growing: both networks grow a resolution per stage, fade-in.",
    )
