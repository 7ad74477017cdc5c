"""The run directory: its files (one reader, one writer), resume state, manifest, budget,
fingerprint, and the ``status`` and ``estimate`` views of it."""
