"""Running a plan: the model built from it, execution paths, the loop and its callbacks."""
