"""Adapters translate one upstream schema: build the request, parse a response, parse a stream event."""
