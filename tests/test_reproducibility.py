"""What "reproducible" means, exactly (README, "Sampling is reproducible"):

- one machine, the same library versions: `sample(n, seed)` is a pure function of the
  weights, n and the seed, in any process (stateless random ops);
- other float kernels (another CPU's oneDNN code path, another TensorFlow build): the same
  up to rounding. A GAN's images differ by at most one grey level in a few pixels, a
  likelihood by ~1e-6 relative; an autoregressive draw can flip to a neighbouring value where
  the random number falls within rounding of a boundary, and the pixels after it are then
  drawn given a different image (2 of 64 cells of the PixelCNN card's grid differed on an
  AVX2-only EPYC).

Other kernels are stood in for here by turning oneDNN off (TF_ENABLE_ONEDNN_OPTS=0) in a
fresh process: TensorFlow's Eigen kernels sum in other orders than oneDNN's.
"""
import os
import subprocess
import sys

import keras
import numpy as np

from keras_gen import data, zoo

SCRIPT = """
import sys, numpy as np, keras
from keras_gen import data, zoo
gan, pixelcnn = zoo.load("dcgan-mnist5k"), zoo.load("pixelcnn-mnist5k")
x, _ = data.load_arrays("mnist5k", "test")
np.savez(sys.argv[1], images=keras.ops.convert_to_numpy(gan.sample_uint8(64, 7)) if hasattr(gan, "sample_uint8")
         else np.round(keras.ops.convert_to_numpy(gan.sample(64, 7)) * 255).astype("uint8"),
         log_prob=keras.ops.convert_to_numpy(pixelcnn.log_prob(x[:32])),
         logits=keras.ops.convert_to_numpy(pixelcnn(x[:4])))
"""


def _in_process():
    gan, pixelcnn = zoo.load("dcgan-mnist5k"), zoo.load("pixelcnn-mnist5k")
    x, _ = data.load_arrays("mnist5k", "test")
    images = (keras.ops.convert_to_numpy(gan.sample_uint8(64, 7)) if hasattr(gan, "sample_uint8")
              else np.round(keras.ops.convert_to_numpy(gan.sample(64, 7)) * 255).astype("uint8"))
    return {"images": images, "log_prob": keras.ops.convert_to_numpy(pixelcnn.log_prob(x[:32])),
            "logits": keras.ops.convert_to_numpy(pixelcnn(x[:4]))}


def _fresh_process(tmp_path, **env):
    out = tmp_path / "result.npz"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KERAS_GEN_AUTO_PRECISION": "float32", "TF_CPP_MIN_LOG_LEVEL": "3",
                               **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(out))


def test_on_one_machine_samples_and_likelihoods_are_identical_in_a_fresh_process(tmp_path):
    here, there = _in_process(), _fresh_process(tmp_path)
    for key in here:
        np.testing.assert_array_equal(here[key], there[key], err_msg=key)


def test_other_float_kernels_change_results_only_by_rounding(tmp_path):
    here, there = _in_process(), _fresh_process(tmp_path, TF_ENABLE_ONEDNN_OPTS="0")
    grey_levels = np.abs(here["images"].astype(int) - there["images"].astype(int))
    assert grey_levels.max() <= 1
    assert np.mean(grey_levels > 0) < 0.01
    np.testing.assert_allclose(there["log_prob"], here["log_prob"], rtol=1e-5)
    np.testing.assert_allclose(there["logits"], here["logits"], rtol=1e-4, atol=1e-4)
