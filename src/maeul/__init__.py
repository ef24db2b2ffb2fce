"""maeul: open urban AI platform."""
__version__ = "0.1.0"
