"""Executors: where and in what order a run's assets are computed."""
