"""The backends: one contract (``base``), one module per way of running batches."""
