"""Anthropic's Messages surface: `/v1/messages` and `/v1/messages/count_tokens` (Claude Code's gateway API)."""
