"""The validate stage's statistics: the hypotheses' tests, effects and checks on validation prompts.

sets (the validation answers by prompt, balanced per-prompt differences), significance (each
hypothesis's test), findings (validate_all: the Finding rows), generalisation (other groups'
prompts), texts (the unaligned fallback), baseline (bag-of-words AUC), generative (judge-free test).
"""
