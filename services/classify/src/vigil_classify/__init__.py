"""Vigil classify service."""
