"""Hook implementations of gan-wgan. Components arrive with issue #5; until then the plugin
loads and registers nothing, so the install and test matrix exists from the start."""
