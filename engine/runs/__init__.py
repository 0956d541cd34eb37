"""The run store and the typed events it records."""
