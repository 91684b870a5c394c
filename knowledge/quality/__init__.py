"""Keeping the knowledge honest: what is stale (past its review date, or unchanged for too long) and what
disagrees (near-duplicate FAQ questions with different answers, pages that state another number than an FAQ
entry), listed for a person to resolve; nothing here changes the store."""
