"""Routing: configuration, strategies that compute weights, selection, and the executor."""
