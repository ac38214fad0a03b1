"""Members: tags (channel, system, manual), segments, RFM scores and groups, lifecycle stages (ADR 0028)."""
