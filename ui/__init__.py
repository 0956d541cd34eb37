"""Display helpers shared by the dashboard's pages: process-wide singletons, session defaults and charts.

No ML happens here: everything is computed by `engine` and read back from its run store or job registry.
"""
