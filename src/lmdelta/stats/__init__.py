"""Statistics of a finding: tests valid for how the texts were sampled, effect sizes, FDR control.

See docs/statistics.md for the methods and the calibration numbers behind them.
"""
