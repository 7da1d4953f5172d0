"""Proposers turn discovery samples into hypotheses. They never see validation prompts."""
