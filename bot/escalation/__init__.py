"""When and how a conversation goes to a human: sentiment, the escalation rules and policy, the handoff event."""
