"""The package version, in one place that imports nothing (so anything may import it)."""

__version__ = "0.1.0"
