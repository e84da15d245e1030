"""The `visionzoo` command line: one module per command."""
