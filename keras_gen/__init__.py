"""keras-gen: generative and adversarial models for Keras 3 on TensorFlow.

Importing the package is cheap: TensorFlow is imported only by the submodules that need it
(`keras_gen.models`, `keras_gen.data`, `keras_gen.export`, ...), so `keras-gen --help` starts
fast.
"""
from keras_gen._version import __version__

__all__ = ["__version__"]
