"""mailbot: email intake for calls for proposals."""

__version__ = "0.1.0"
