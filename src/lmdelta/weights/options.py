"""The settings of a weight-difference analysis: the config's `weights` section (lmdelta.config.weights)."""

from lmdelta.config.weights import WeightsConfig as WeightsOptions

__all__ = ["WeightsOptions"]
