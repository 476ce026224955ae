"""Multi-reference preference optimisation (LN-DPO, MRPO, MDPO, geometric mixture) with intelligent reference weighting, written as notebooks."""

__version__ = "0.1.0"
