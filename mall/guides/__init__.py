"""Guide distribution (导购分销): guides, stores, share links, visits and explainable customer binding."""
