"""selfinstruct: grow a small set of human-written tasks into a clean instruction-tuning dataset."""

__version__ = "0.1.0"
