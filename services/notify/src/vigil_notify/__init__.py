"""Vigil notify service."""
