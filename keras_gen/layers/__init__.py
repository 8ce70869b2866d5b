"""Layers shared by keras-gen's models; one layer per file."""
from keras_gen.layers.conditional_batch_norm import ConditionalBatchNormalization
from keras_gen.layers.masked_conv2d import MaskedConv2D, causal_mask
from keras_gen.layers.minibatch_stddev import MinibatchStdDev
from keras_gen.layers.replay_buffer import ReplayBuffer
from keras_gen.layers.self_attention import SelfAttention2D
from keras_gen.layers.spectral_norm import SpectralNorm

__all__ = [
    "ConditionalBatchNormalization",
    "MaskedConv2D",
    "MinibatchStdDev",
    "ReplayBuffer",
    "SelfAttention2D",
    "SpectralNorm",
    "causal_mask",
]
