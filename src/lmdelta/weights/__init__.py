"""Weight-difference analysis: where and how much a finetune changed a model, matrix by matrix, against a
random-matrix null. `analyse(folder_a, folder_b, out_dir)` is the entry; docs/weights.md reads the numbers."""

from lmdelta.rundir import WEIGHTS, WEIGHTS_SUMMARY
from lmdelta.weights.analyse import analyse
from lmdelta.weights.options import WeightsOptions
from lmdelta.weights.resolve import resolve_model_folder

__all__ = ["WEIGHTS", "WEIGHTS_SUMMARY", "WeightsOptions", "analyse", "resolve_model_folder"]
