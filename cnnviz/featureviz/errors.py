"""The error every part of feature visualisation raises."""

from __future__ import annotations

__all__ = ["FeatureVizError"]


class FeatureVizError(ValueError):
    """Invalid arguments, an unsupported model, or an optimisation that diverged."""
