"""The call log: one row per client call, written off the request path."""
