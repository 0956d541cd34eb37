"""Background work for the dashboard: the training runner and short jobs."""
