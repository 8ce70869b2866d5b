"""keras-gen: generative and adversarial models for Keras 3 on TensorFlow.

Importing the package is cheap (no TensorFlow), so `keras-gen --help` starts fast, yet it
behaves as a loaded library: submodules load on first use (`keras_gen.zoo.load(...)`,
`keras_gen.data.load(...)`, PEP 562), and the model classes are registered with Keras as soon
as Keras is imported, before or after this package, so `keras.models.load_model("x.keras")`
works after a bare `import keras_gen`.
"""
import importlib
import importlib.abc
import importlib.util
import sys

from keras_gen._version import __version__

SUBMODULES = (
    "analysis", "augment", "callbacks", "cli", "data", "errors", "export", "images", "layers", "likelihoods",
    "losses", "models", "networks", "recipe", "registry", "regularizers", "saving", "training", "zoo",
)

__all__ = ["__version__", *SUBMODULES]


def __getattr__(name):
    if name in SUBMODULES:
        return importlib.import_module(f"keras_gen.{name}")
    raise AttributeError(f"module 'keras_gen' has no attribute {name!r}")


def _register_with_keras():
    """Register every model class with Keras under its name, `keras_gen>ClassName`.

    Registered as a stand-in that imports the model's family module only when Keras needs it
    (`from_config` during `load_model`); importing the module then registers the class itself.
    Importing model modules here instead would be circular when keras-gen's own modules are
    what first imports Keras.
    """
    import keras

    from keras_gen import registry

    registered = keras.saving.get_custom_objects()
    for spec in registry.MODELS.values():
        module, _, class_name = spec.target.partition(":")
        registered.setdefault(f"keras_gen>{class_name}", _stand_in(module, class_name))


def _stand_in(module, class_name):
    def from_config(cls, config):
        return getattr(importlib.import_module(module), class_name).from_config(config)

    def get_config(self):  # never called: no instance of the stand-in exists
        raise NotImplementedError

    return type(class_name, (), {"from_config": classmethod(from_config), "get_config": get_config,
                                 "__module__": module})


class _AfterKerasImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs `_register_with_keras` right after the `keras` package has been imported."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # once; and let the normal finders locate keras
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register_with_keras()


if "keras" in sys.modules:
    _register_with_keras()
elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
