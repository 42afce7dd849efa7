"""Vigil operator console: a web page over the streams and the existing APIs."""
