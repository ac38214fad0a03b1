"""Guide distribution over HTTP."""
