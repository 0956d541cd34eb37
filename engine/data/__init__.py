"""Datasets: files and splits, safe reading of images and archives, the health report, decoding and augmentation."""
