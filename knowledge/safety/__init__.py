"""Keeping knowledge-base text data, never instructions: Unicode normalisation for checks, and the detector of
sentences that address the assistant instead of the customer."""
