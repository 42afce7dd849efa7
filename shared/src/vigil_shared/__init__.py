"""Vigil's shared event contracts and plumbing (settings, logging, streams, workers, runtime)."""
