from collections import Counter

from lmdelta.config import PromptsConfig
from lmdelta.records import Prompt
from lmdelta.stages.prompts import select


def bank(n_groups=4, per_group=20):
    return [Prompt(f"g{g}-{i}", f"prompt {g} {i}", f"g{g}") for g in range(n_groups) for i in range(per_group)]


def test_split_is_stratified_by_group_and_seeded():
    chosen = select(bank(), PromptsConfig(discovery_fraction=0.3, seed=1))
    per_group = Counter((p.group, p.split) for p in chosen)
    for g in range(4):
        assert per_group[(f"g{g}", "discovery")] == 6 and per_group[(f"g{g}", "validation")] == 14
    again = select(bank(), PromptsConfig(discovery_fraction=0.3, seed=1))
    assert [p.split for p in again] == [p.split for p in chosen]
    other = select(bank(), PromptsConfig(discovery_fraction=0.3, seed=2))
    assert [p.split for p in other] != [p.split for p in chosen]


def test_every_prompt_in_exactly_one_split_with_confirmation():
    chosen = select(bank(), PromptsConfig(discovery_fraction=0.3, confirmation_fraction=0.2, seed=0))
    assert len(chosen) == 80 and len({p.id for p in chosen}) == 80
    counts = Counter(p.split for p in chosen)
    assert counts == {"discovery": 24, "confirmation": 16, "validation": 40}


def test_limit_samples_proportionally_per_group():
    prompts = bank(n_groups=3, per_group=10) + [Prompt(f"big-{i}", f"big {i}", "big") for i in range(30)]
    chosen = select(prompts, PromptsConfig(limit=30, seed=0))
    sizes = Counter(p.group for p in chosen)
    assert sum(sizes.values()) == 30 and sizes["big"] == 15 and sizes["g0"] == 5


def test_small_groups_still_propose_and_validate():
    prompts = [Prompt(f"p{i}", f"text {i}", "tiny") for i in range(2)]
    splits = sorted(p.split for p in select(prompts, PromptsConfig(discovery_fraction=0.1, seed=0)))
    assert splits == ["discovery", "validation"]


def test_adding_prompts_keeps_most_assignments():
    base = select(bank(per_group=40), PromptsConfig(seed=0))
    grown = select(bank(per_group=41), PromptsConfig(seed=0))
    before = {p.id: p.split for p in base}
    same = sum(before[p.id] == p.split for p in grown if p.id in before)
    assert same >= 0.9 * len(before)
