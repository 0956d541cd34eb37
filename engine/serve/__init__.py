"""Using a trained run: evaluation, prediction, export, summaries."""
