"""Building blocks shared by model families, one concept per module."""
