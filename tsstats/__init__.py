"""tsstats: a small, fast metrics service for a workstation."""

__version__ = "0.1.0"
