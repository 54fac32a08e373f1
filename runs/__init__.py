"""Runs: config, job kinds, the run pipeline, HDF5 store and checkpoints, CLI, plots, benchmarks."""
