"""Hook implementations of gan-ada. Components arrive with issue #7; until then the plugin
loads and registers nothing, so the install and test matrix exists from the start."""
