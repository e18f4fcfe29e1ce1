"""The package version, in one place: pyproject.toml reads it, and every module that stamps a
file with it imports it from here (not from the package root, which imports them)."""

__version__ = "0.1.0"
