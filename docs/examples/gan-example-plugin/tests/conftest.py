"""Every test sees gancore's built-ins and gan-example, registered in-process (installed or not)."""

from __future__ import annotations

from gan_example import plugin

import gancore.testing as gt

registry = gt.plugin_fixture("gan-example", plugin, autouse=True)
