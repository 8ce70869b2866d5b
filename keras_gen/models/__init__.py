"""keras-gen model families, one file each, on three bases. Importing this imports TensorFlow."""
from keras_gen.models.adversarial import AdversarialModel
from keras_gen.models.autoregressive import AutoregressiveModel
from keras_gen.models.base import Endpoint, GenerativeModel
from keras_gen.models.biggan import BigGAN
from keras_gen.models.cgan import ACGAN, CGAN
from keras_gen.models.dcgan import DCGAN
from keras_gen.models.domain_adaptation import ADDA, DANN, SourceOnly, TargetOracle
from keras_gen.models.dragan import DRAGAN
from keras_gen.models.gan import GAN
from keras_gen.models.gated_pixelcnn import GatedPixelCNN
from keras_gen.models.latent import LatentModel
from keras_gen.models.lsgan import LSGAN
from keras_gen.models.pixelcnn import PixelCNN
from keras_gen.models.pixelcnnpp import PixelCNNPlusPlus
from keras_gen.models.pixelrnn import PixelRNN
from keras_gen.models.wgan import WGAN, WGANGP

__all__ = [
    "ADDA",
    "ACGAN",
    "CGAN",
    "AdversarialModel",
    "AutoregressiveModel",
    "BigGAN",
    "DCGAN",
    "DANN",
    "DRAGAN",
    "Endpoint",
    "GAN",
    "GatedPixelCNN",
    "GenerativeModel",
    "LSGAN",
    "LatentModel",
    "PixelCNN",
    "PixelCNNPlusPlus",
    "PixelRNN",
    "SourceOnly",
    "TargetOracle",
    "WGAN",
    "WGANGP",
]
