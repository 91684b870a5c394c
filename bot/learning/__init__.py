"""Learning from use: the phrasings customers used, kept for a person to review and accept as FAQ variants."""
