"""Training: build (the one composition place), the host loop, checkpoints, export, logging, plots, bench."""
