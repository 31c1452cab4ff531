"""Neural back-end: open-set losses, the adapter, the vectorised ensemble and its training."""
