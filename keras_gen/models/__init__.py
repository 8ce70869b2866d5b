"""keras-gen model families, one file each. Importing this imports TensorFlow."""
from keras_gen.models.base import Endpoint, GenerativeModel
from keras_gen.models.dcgan import DCGAN
from keras_gen.models.pixelcnn import PixelCNN

__all__ = ["DCGAN", "Endpoint", "GenerativeModel", "PixelCNN"]
