"""Frozen features and linear probes: extraction, fits, candidate heads chosen by cross-validation."""
