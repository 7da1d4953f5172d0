"""Effects are printed with the decimals that show them: a length property's effect of 0.0015 on its [0, 1]
scale once read "0.00 [0.00, 0.00]" in the terminal table, beside an AUC of 0.83."""

from lmdelta.report.filters import effect_digits, fmt_ci, fmt_signed


def test_ordinary_effects_keep_two_decimals():
    assert fmt_signed(0.42) == "+0.42" and fmt_ci((0.2, 0.64)) == "[0.20, 0.64]"
    assert fmt_signed(-0.05) == "-0.05" and effect_digits(0.0, None) == 2


def test_small_effects_show_two_significant_figures():
    assert fmt_signed(0.00152) == "+0.0015"
    assert fmt_ci((0.00135, 0.00169)) == "[0.0014, 0.0017]"
    assert fmt_signed(-0.0042) == "-0.0042"
    assert effect_digits(0.00001) == 4  # at most four decimals
    assert effect_digits(0.003, 0.05) == 2  # an interval reaching an ordinary size keeps two
