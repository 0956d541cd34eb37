"""Backbones: the catalogue, offline weights, layer groups, the input contract, taps and cuts, costs."""
