"""Thin HTTP handlers: parse, plan, execute, respond."""
