"""Readers of the machine: one module per kind of reading, each with its operating-system root passed in."""
