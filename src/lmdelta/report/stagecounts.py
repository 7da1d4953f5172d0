"""A stage's counts in words, as the report's run table and `lmdelta status` show them (light: no numpy).

The manifest keeps each stage's counts as nested mappings (per comparison, per side); read raw they
print as Python dicts. Here a number reads "14 hypotheses", a text "status: not run …", and a nested
mapping "null control: 9 hypotheses, 3 rounds".
"""

from __future__ import annotations

from typing import Any

LABELS = {"main": "main comparison", "null": "null control", "a": "side a", "b": "side b"}


def counts_in_words(counts: dict[str, Any]) -> str:
    """The whole mapping: parts joined by ", ", or by "; " at the top when some part is itself a mapping."""
    joiner = "; " if any(isinstance(value, dict) for value in counts.values()) else ", "
    return joiner.join(_part(key, value, ", ") for key, value in counts.items()) or "–"


def _part(key: Any, value: Any, joiner: str) -> str:
    name = LABELS.get(str(key), str(key).replace("_", " "))
    if isinstance(value, dict):
        inner = joiner.join(_part(k, v, ", ") for k, v in value.items())
        return f"{name}: {inner or '–'}"
    if isinstance(value, bool) or value is None:
        return f"{name}: {'yes' if value else 'no' if value is False else '–'}"
    if isinstance(value, (int, float)):
        return f"{_number(value)} {name}"
    if isinstance(value, list):
        return f"{name}: {', '.join(map(str, value)) or '–'}"
    return f"{name}: {value}"


def _number(value: float) -> str:
    """Whole numbers with thousands separators; others to three significant figures (and no exponent)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"


def usage_line(entry: dict[str, Any]) -> str:
    """An LLM ledger entry in one line: requests, calls, cache hits, failures, tokens, dollars."""
    failed = sum((entry.get("failures") or {}).values())
    return (
        f"{entry.get('requests', 0)} requests, {entry.get('calls', 0)} calls ({entry.get('cached', 0)} cached, "
        f"{failed} failed, {entry.get('reasks', 0)} re-asks), {entry.get('input_tokens', 0)} in / "
        f"{entry.get('output_tokens', 0)} out tokens, ${entry.get('cost_usd', 0.0):.4f}"
    )
