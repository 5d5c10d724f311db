"""Test doubles shared by unit and integration tests: a fake OpenAI-compatible upstream and an SSE reader."""
