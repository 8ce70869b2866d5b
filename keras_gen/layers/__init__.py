"""Layers shared by keras-gen's models; one layer per file."""
from keras_gen.layers.masked_conv2d import MaskedConv2D, causal_mask

__all__ = ["MaskedConv2D", "causal_mask"]
