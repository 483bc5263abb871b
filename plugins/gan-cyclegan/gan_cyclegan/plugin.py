"""Hook implementations of gan-cyclegan. Components arrive with issue #8; until then the plugin
loads and registers nothing, so the install and test matrix exists from the start."""
