"""Imported first in a subprocess, it makes the `[models]` extra's packages unimportable, as on a core install
(`pip install lmdelta` without extras): a test of the lean install without a second virtual environment."""

import sys

BLOCKED = {"torch", "transformers", "sentence_transformers", "peft", "accelerate", "gguf", "vllm", "bitsandbytes"}


class BlockModels:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed (blocked: a core install has no [models] extra)")
        return None


sys.meta_path.insert(0, BlockModels())
