"""Pure values and rules: no I/O, no imports from other Cairn layers."""
