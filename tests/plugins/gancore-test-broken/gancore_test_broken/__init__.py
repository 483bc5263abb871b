"""A test plugin that fails on import, as a plugin with a missing dependency would."""

import gancore_test_missing_dependency  # noqa: F401  (does not exist, on purpose)
