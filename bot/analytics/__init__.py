"""What the stored conversations and labelled questions say: `supportbot report` and `supportbot eval`."""
