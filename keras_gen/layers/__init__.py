"""Layers shared by keras-gen's models; one layer per file."""
from keras_gen.layers.batch_normalization import BatchNormalization
from keras_gen.layers.concat_elu import ConcatELU
from keras_gen.layers.conditional_batch_norm import ConditionalBatchNormalization
from keras_gen.layers.diagonal_bilstm import DiagonalBiLSTM
from keras_gen.layers.global_batch_dropout import GlobalBatchDropout
from keras_gen.layers.gradient_reversal import GradientReversal
from keras_gen.layers.leaky_relu import LeakyReLU
from keras_gen.layers.masked_conv2d import MaskedConv2D, causal_mask
from keras_gen.layers.minibatch_stddev import MinibatchStdDev
from keras_gen.layers.replay_buffer import ReplayBuffer
from keras_gen.layers.row_lstm import RowLSTM
from keras_gen.layers.self_attention import SelfAttention2D
from keras_gen.layers.spectral_norm import SpectralNorm

__all__ = [
    "BatchNormalization",
    "ConcatELU",
    "ConditionalBatchNormalization",
    "DiagonalBiLSTM",
    "GlobalBatchDropout",
    "GradientReversal",
    "LeakyReLU",
    "MaskedConv2D",
    "MinibatchStdDev",
    "ReplayBuffer",
    "RowLSTM",
    "SelfAttention2D",
    "SpectralNorm",
    "causal_mask",
]
