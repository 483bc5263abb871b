"""Hook implementations of gan-inpaint. Components arrive with issue #9; until then the plugin
loads and registers nothing, so the install and test matrix exists from the start."""
