"""Run by tests/test_distribute.py in fresh processes (TensorFlow's devices are fixed once it
starts): one training step under a tf.distribute strategy against the one-device step.

    python tests/distributed_steps.py mirrored OUT.json   # 2 logical CPUs, every case

(MultiWorkerMirroredStrategy is tested through `keras-gen train --strategy multiworker`.)
"""
import json
import os
import sys

os.environ.setdefault("KERAS_GEN_AUTO_PRECISION", "float32")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SGD = {"class_name": "SGD", "config": {"learning_rate": 0.1}}


def cases():
    """name -> (model factory, compile arguments, conditional, examples), batches of 8.

    15 examples make two steps, the second on an uneven global batch of 7 (4 + 3 examples
    on two replicas).

    Most cases use SGD, so that a weight's change is the gradient itself: Adam's first step
    moves every weight by about ±lr whatever the gradient's size, so where the true gradient
    is 0 (a bias before batch norm) rounding decides the sign. DCGAN-GP and PixelCNN also
    run with their papers' Adam, as trained.
    """
    import tensorflow as tf

    import keras_gen.models as m

    small_gan = {"image_shape": (28, 28, 1), "latent_dim": 8, "seed": 3}
    small_da = {"image_shape": (28, 28, 3), "filters": (4, 6), "classifier_widths": (8,)}

    def with_target(model):
        """(images, labels) batches -> (source images, labels, target images): the source grey
        (converted by the model), the target an RGB other domain of the same images."""
        fit = model.fit
        model.fit = lambda ds, **kw: fit(ds.map(lambda x, y: (x, y, tf.concat([255 - x, x, x // 2], -1))), **kw)
        return model

    def adda_stage2():
        model = m.ADDA(**small_da, discriminator_widths=(8,))
        model.set_stage(2)
        return with_target(model)

    return {
        "dcgan_gp_adam": (lambda: m.DCGAN(**small_gan), {"penalty": "gradient_penalty"}, False, 8),
        # The penalty's and the augmentations' noise, and the minibatch-stddev groups (which
        # differed from one device's here until they were made global), on an uneven batch.
        "dragan_augment_noise_uneven_batch": (
            lambda: m.DRAGAN(**small_gan, minibatch_stddev=True),
            {"augment": ["translation", "cutout", "color"], "instance_noise": 0.1, "optimizer": SGD}, False, 15),
        "gan_dropout": (lambda: m.GAN(**small_gan), {"optimizer": SGD}, False, 8),
        # Two critic steps, not the paper's five: each is unrolled in the traced step.
        "wgan_clipping": (lambda: m.WGAN(**small_gan), {"d_steps": 2}, False, 8),
        "wgan_gp": (lambda: m.WGANGP(**small_gan), {"optimizer": SGD, "d_steps": 2}, False, 8),
        "lsgan": (lambda: m.LSGAN(**small_gan), {"optimizer": SGD}, False, 8),
        "cgan": (lambda: m.CGAN(**small_gan, num_classes=10), {"optimizer": SGD}, True, 8),
        "acgan": (lambda: m.ACGAN(**small_gan, num_classes=10), {"optimizer": SGD}, True, 8),
        # Without self-attention, which mixes positions within an example only (and whose
        # spectral norms are the blocks' again): tracing it took 14 of this case's 47 s.
        "biggan_ema_orthogonal": (lambda: m.BigGAN(image_shape=(28, 28, 1), num_classes=10, latent_dim=9, channels=8,
                                                    embed_dim=4, seed=3, attention_resolution=None),
                                  {"optimizer": SGD}, True, 8),
        "pixelcnn_adam": (lambda: m.PixelCNN(image_shape=(28, 28, 1), filters=8, num_layers=2), {}, False, 8),
        "gated_pixelcnn_conditional": (
            lambda: m.GatedPixelCNN(image_shape=(28, 28, 1), filters=8, num_layers=2, num_classes=10),
            {"optimizer": SGD}, True, 8),
        # No residual blocks (so no dropout: the GAN above checks the same GlobalBatchDropout
        # layer), the down- and up-sampling streams and the mixture head: a block per
        # resolution tripled the case's time (47 s), most of it tracing.
        "pixelcnnpp": (
            lambda: m.PixelCNNPlusPlus(image_shape=(28, 28, 1), filters=4, num_mixtures=2, blocks_per_resolution=0),
            {}, False, 8),
        "pixelrnn_conditional_uneven_batch": (
            lambda: m.PixelRNN(image_shape=(28, 28, 1), hidden_size=4, num_layers=1, num_classes=10),
            {"optimizer": SGD}, True, 15),
        "source_only_grey_to_rgb": (lambda: m.SourceOnly(**small_da), {"optimizer": SGD}, True, 15),
        "target_oracle": (lambda: m.TargetOracle(**{**small_da, "image_shape": (28, 28, 1)}), {"optimizer": SGD},
                          True, 8),
        "dann_uneven_batch": (lambda: with_target(m.DANN(**small_da, discriminator_widths=(8,), lambda_=0.5)),
                              {"optimizer": SGD}, True, 15),
        "adda_stage1": (lambda: m.ADDA(**small_da), {"optimizer": SGD}, True, 8),
        "adda_stage2_uneven_batch": (adda_stage2, {"d_optimizer": SGD, "target_optimizer": SGD}, True, 15),
    }


BATCH = 8


def data(examples):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (examples, 28, 28, 1)).astype("uint8"),
            rng.integers(0, 10, (examples,)).astype("int32"))


def one_step(make, compile_args, conditional, examples, strategy=None):
    """(weights before, weights after, logged metrics, the loss watch's counters, the model's
    registry name) of `fit` on `examples` examples in global batches of `BATCH` (one step for
    8)."""
    import keras
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        keras.utils.set_random_seed(1)  # the same initial weights (and dropout seeds) every time
        model = make()
        model.compile(**compile_args)
    before = [w.copy() for w in model.get_weights()]
    images, labels = data(examples)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels) if conditional else images).batch(BATCH)
    logs = model.fit(dataset, epochs=1, verbose=0).history
    from keras_gen import registry

    return (before, model.get_weights(), {k: float(v[0]) for k, v in logs.items()}, model.first_non_finite_step(),
            registry.name_of(model))


def mirrored(out):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    for name, (make, compile_args, conditional, batch) in cases().items():
        before, single, single_logs, single_watch, model = one_step(make, compile_args, conditional, batch)
        _, replicated, replicated_logs, replicated_watch, _ = one_step(make, compile_args, conditional, batch, strategy)
        results[name] = {
            "model": model,
            "replicas": strategy.num_replicas_in_sync,
            "max_weight_difference": max(float(np.max(np.abs(a - b), initial=0)) for a, b in zip(single, replicated)),
            "max_weight_change": max(float(np.max(np.abs(a - b), initial=0)) for a, b in zip(before, single)),
            "max_relative_metric_difference": max(
                abs(single_logs[k] - replicated_logs[k]) / max(1.0, abs(single_logs[k])) for k in single_logs),
            "metrics": sorted(single_logs) == sorted(replicated_logs),
            # (first non-finite step, steps run), counted per replica inside the train function
            "loss_watch": [single_watch, replicated_watch],
        }
        print(name, results[name], flush=True)
    with open(out, "w") as f:
        json.dump({"cases": results, "replay_buffer": replay_buffer_error(strategy)}, f)


def replay_buffer_error(strategy):
    """The error a replay buffer gets under two replicas (each would keep its own fakes)."""
    import keras_gen.models as m
    from keras_gen.errors import KerasGenError

    with strategy.scope():
        model = m.DCGAN(image_shape=(8, 8, 1), latent_dim=4, generator_widths=(8,), discriminator_widths=(8,))
        try:
            model.compile(replay_buffer=16)
        except KerasGenError as exc:
            return str(exc)
    return None


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    {"mirrored": mirrored}[mode](out)
