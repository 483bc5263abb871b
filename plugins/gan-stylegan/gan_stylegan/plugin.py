"""Hook implementations of gan-stylegan. Components arrive with issue #6; until then the plugin
loads and registers nothing, so the install and test matrix exists from the start."""
