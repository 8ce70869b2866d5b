"""keras-gen model families, one file each, on three bases. Importing this imports TensorFlow."""
from keras_gen.models.adversarial import AdversarialModel
from keras_gen.models.autoregressive import AutoregressiveModel
from keras_gen.models.base import Endpoint, GenerativeModel
from keras_gen.models.dcgan import DCGAN
from keras_gen.models.latent import LatentModel
from keras_gen.models.pixelcnn import PixelCNN

__all__ = [
    "AdversarialModel",
    "AutoregressiveModel",
    "DCGAN",
    "Endpoint",
    "GenerativeModel",
    "LatentModel",
    "PixelCNN",
]
