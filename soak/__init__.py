"""`make soak`: a bounded mixed workload against the whole stack, then the invariant audit (see __main__)."""
