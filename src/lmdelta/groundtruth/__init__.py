"""Ground truth for lmdelta: known behaviours ("quirks") taught to a small model by finetuning,
with offline training data, so a run can be scored on whether it finds them again."""
