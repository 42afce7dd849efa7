"""Vigil capfeed: classified alerts served as CAP 1.2 documents and a filterable Atom feed."""
