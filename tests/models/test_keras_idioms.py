"""What a Keras user brings: default callbacks, evaluate, load_model, compile's arguments, any
kind of input pipeline. Checked on every model family base."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_python
from keras_gen import data
from keras_gen.errors import KerasGenError
from keras_gen.models import DCGAN, PixelCNN


def tiny_gan():
    return DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16), seed=1)


def tiny_pixelcnn():
    return PixelCNN(image_shape=(8, 8, 1), filters=8, num_layers=1, kernel_size=3, first_kernel_size=3)


def digits8(n=64):
    return data.load_arrays("digits", "train")[0][:n]


@pytest.mark.parametrize("make", [tiny_gan, tiny_pixelcnn])
def test_default_early_stopping_and_reduce_lr_see_a_loss(make, recwarn):
    model = make()
    model.compile()
    stop = keras.callbacks.EarlyStopping(patience=0)  # monitors val_loss
    reduce = keras.callbacks.ReduceLROnPlateau(patience=0)
    x = digits8(48)
    history = model.fit(x[:32], batch_size=16, epochs=2, verbose=0, validation_data=(x[32:], None),
                        callbacks=[stop, reduce]).history
    assert "loss" in history and "val_loss" in history
    assert not [w for w in recwarn if "conditioned on metric" in str(w.message)]
    assert stop.best is not None and np.isfinite(stop.best)


def test_model_checkpoint_knows_which_way_bits_per_dim_goes(tmp_path):
    model = tiny_pixelcnn()
    model.compile()
    x = digits8(64)
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best.keras"), monitor="val_bits_per_dim", save_best_only=True
    )
    model.fit(x[:32], batch_size=16, epochs=2, verbose=0, validation_data=(x[32:], None), callbacks=[checkpoint])
    assert checkpoint.monitor_op is keras.ops.less  # lower is better, without mode=
    assert (tmp_path / "best.keras").is_file()
    gan = tiny_gan()
    gan.compile()
    gan_checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "gan.keras"), monitor="d_real", save_best_only=True)
    gan.fit(x[:32], batch_size=16, epochs=1, verbose=0, callbacks=[gan_checkpoint])
    assert gan_checkpoint.monitor_op is keras.ops.greater


def test_a_gan_evaluates_held_out_images_without_changing_anything():
    model = tiny_gan()
    model.compile()
    before = [v.numpy().copy() for v in model.weights]
    result = model.evaluate(digits8(32), batch_size=16, verbose=0, return_dict=True)
    assert set(result) == {"loss", "d_loss", "g_loss", "d_real", "d_fake"}
    assert 0 < result["d_real"] < 1 and np.isclose(result["loss"], result["d_loss"] + result["g_loss"], rtol=1e-5)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))
    # ... and repeats itself: every call draws its fakes from the same start of the
    # evaluation stream (which advanced from call to call), the penalty's noise too.
    again = model.evaluate(digits8(32), batch_size=16, verbose=0, return_dict=True)
    assert again == result
    model.compile(penalty="dragan")
    first, second = (model.evaluate(digits8(32), batch_size=16, verbose=0, return_dict=True) for _ in range(2))
    assert first == second and first["penalty"] > 0


def test_compile_arguments_are_checked_and_optimizer_sets_both_players():
    model = tiny_gan()
    model.compile(optimizer=keras.optimizers.RMSprop(5e-5))
    assert isinstance(model.d_optimizer, keras.optimizers.RMSprop) and isinstance(model.g_optimizer, keras.optimizers.RMSprop)
    assert model.d_optimizer is not model.g_optimizer
    assert float(model.g_optimizer.learning_rate) == pytest.approx(5e-5)
    model.compile(d_optimizer={"class_name": "Adam", "config": {"learning_rate": 1e-4, "beta_1": 0.0, "beta_2": 0.9}})
    assert float(model.d_optimizer.beta_2) == pytest.approx(0.9)
    model.compile(d_optimizer=None, g_optimizer=None)  # None: the paper's default
    assert float(model.g_optimizer.learning_rate) == pytest.approx(2e-4)
    with pytest.raises(KerasGenError, match="either optimizer"):
        model.compile(optimizer="adam", d_optimizer="adam")
    with pytest.raises(KerasGenError, match="unknown argument.*loss_weights"):
        model.compile(loss_weights=[1.0])
    with pytest.raises(KerasGenError, match="unknown argument.*metrics") as refused:
        tiny_pixelcnn().compile(metrics=["accuracy"])
    # It lists the arguments there are, not the name of the **keyword catch-all.
    assert "it takes optimizer, jit_compile" in str(refused.value) and "keras_args" not in str(refused.value)
    with pytest.raises(KerasGenError, match="optimizer"):
        tiny_pixelcnn().compile(optimizer="not-an-optimizer")


@pytest.mark.parametrize("settings, message", [
    ({"penalty": "gradient_penalty", "penalty_weight": -10}, "penalty_weight must be a finite number >= 0"),
    ({"penalty": "r1", "penalty_weight": float("nan")}, "penalty_weight must be a finite number >= 0"),
    ({"penalty_weight": 5}, "penalty_weight 5 weighs no penalty: give penalty too"),
    ({"orthogonal_regularization": -1.0}, r"orthogonal_regularization must be a finite number >= 0 \(or None\)"),
    ({"instance_noise": -1}, "instance_noise must be a finite number >= 0"),
    ({"instance_noise": 0.1, "instance_noise_steps": 0}, "instance_noise_steps must be a whole number of at least 1"),
    ({"replay_buffer": 2.5}, "replay_buffer must be a whole number of at least 0"),
    ({"replay_buffer": 8, "replay_fraction": 2.0}, "replay_fraction must be a number from 0 to 1"),
])
def test_stabiliser_weights_that_would_train_another_game_are_refused(settings, message):
    """A negative penalty weight rewards large gradients, a NaN one trained to NaN, a weight
    without a penalty was ignored, a buffer of 2.5 fakes was truncated to 2, and a replay
    fraction of 2 raised a plain ValueError: each trained (or failed) without a word."""
    with pytest.raises(KerasGenError, match=message):
        tiny_gan().compile(**settings)


def test_a_reloaded_gan_with_its_default_penalty_weight_compiles_again(tmp_path):
    model = tiny_gan()
    model.compile(penalty="r1", penalty_weight=0.2, instance_noise=0.1, replay_buffer=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.penalty_weight == 0.2 and loaded.replay is None
    plain = tiny_gan()
    plain.compile()  # penalty None, penalty_weight at its default: stored, and fine on reload
    plain.save(tmp_path / "p.keras")
    assert keras.models.load_model(tmp_path / "p.keras").penalty is None


class FloatImages(keras.utils.PyDataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return digits8(8).astype("float32")


@pytest.mark.parametrize("make", [tiny_gan, tiny_pixelcnn])
def test_uint8_check_covers_pydataset_and_generators(make):
    model = make()
    model.compile()
    with pytest.raises(KerasGenError, match="uint8 images"):
        model.fit(FloatImages(), epochs=1, verbose=0)

    def generator():
        while True:
            yield np.zeros((4, 9, 9, 1), np.uint8), np.zeros(4, np.int64)

    with pytest.raises(KerasGenError, match=r"\[batch, 8, 8, 1\]"):
        model.fit(generator(), steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    with pytest.raises(KerasGenError, match="batch the dataset"):
        model.fit(tf.data.Dataset.from_tensor_slices(digits8(4)), verbose=0)


def test_call_and_generate_agree_on_the_output_range():
    model = tiny_gan()
    z = model.latents(4, seed=0)
    images = keras.ops.convert_to_numpy(model(z))
    np.testing.assert_array_equal(images, keras.ops.convert_to_numpy(model.generate(z)))
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_load_model_works_after_a_bare_import(tmp_path):
    model = tiny_gan()
    model.compile()
    path = tmp_path / "gan.keras"
    model.save(path)
    z = keras.ops.convert_to_numpy(model.latents(2, seed=0))
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "images.npy", keras.ops.convert_to_numpy(model.generate(z)))
    code = (
        "import sys, numpy as np, keras_gen, keras\n"
        "m = keras.models.load_model(sys.argv[1])\n"
        "out = keras.ops.convert_to_numpy(m.generate(np.load(sys.argv[2])))\n"
        "np.testing.assert_array_equal(out, np.load(sys.argv[3]))\n"
        "print(type(m).__name__, m.compiled)\n"
    )
    result = run_python(code, path, tmp_path / "z.npy", tmp_path / "images.npy")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["DCGAN", "True"]


@pytest.mark.parametrize("make", [tiny_gan, tiny_pixelcnn])
@pytest.mark.parametrize("name", ["m.h5", "m.HDF5"])
def test_save_to_h5_is_a_one_line_error_that_writes_nothing(make, name, tmp_path):
    """Keras' legacy HDF5 format keeps no subclassed model: a GAN's save failed deep inside
    Keras ('SeveralOptimizers' object has no attribute 'weights') after writing 1 MB that could
    not be loaded."""
    model = make()
    with pytest.raises(KerasGenError, match=r"saves as a \.keras file .* give a name ending in \.keras"):
        model.save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []
    model.save(tmp_path / "m.keras")
    assert (tmp_path / "m.keras").stat().st_size > 0


def test_the_package_loads_submodules_lazily_without_tensorflow():
    code = (
        "import sys, keras_gen\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print(keras_gen.zoo.list())\n"
        "assert 'tensorflow' not in sys.modules\n"
        "x, y = keras_gen.data.load_arrays('digits', 'test')\n"
        "print(x.shape, keras_gen.zoo.load('dcgan-mnist5k').latent_dim)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dcgan-mnist5k" in result.stdout and "(359, 8, 8, 1) 64" in result.stdout


def test_from_preset_returns_the_zoo_model_and_refuses_another_class():
    model = DCGAN.from_preset("dcgan-mnist5k")
    assert isinstance(model, DCGAN) and model.compiled
    with pytest.raises(KerasGenError, match="is a PixelCNN, not a DCGAN"):
        DCGAN.from_preset("pixelcnn-mnist5k")


def test_predict_maps_latents_to_images_for_plain_and_conditional_gans():
    from keras_gen.models import CGAN

    model = tiny_gan()
    z = keras.ops.convert_to_numpy(model.latents(5, seed=0))
    np.testing.assert_allclose(model.predict(z, batch_size=2, verbose=0),
                               keras.ops.convert_to_numpy(model.generate(z)), atol=1e-6)
    cgan = CGAN(image_shape=(8, 8, 1), num_classes=3, latent_dim=8, generator_widths=(16, 8),
                discriminator_widths=(8, 16), embed_dim=4)
    labels = np.array([0, 1, 2, 1, 0])
    np.testing.assert_allclose(cgan.predict([z, labels], batch_size=2, verbose=0),
                               keras.ops.convert_to_numpy(cgan.generate(z, labels)), atol=1e-6)


def test_evaluate_on_a_split_with_a_smaller_last_batch_gives_the_mean_over_its_examples():
    """Batches of 9 and 1: each batch's mean weighs by its examples (as Keras weighs its own
    loss), so `evaluate` gives the exact mean NLL of the 10 images and the exact accuracy of a
    classifier, not a mean of batch means."""
    from keras_gen.models.domain_adaptation import SourceOnly

    images, labels = data.load_arrays("digits", "test")
    x, y = images[:10], labels[:10].astype("int32")
    model = tiny_pixelcnn()
    model.compile()
    nll = -keras.ops.convert_to_numpy(model.log_prob(x))
    order = np.argsort(np.abs(nll - nll.mean()))  # the image farthest from the mean NLL last, alone in its batch
    x, y, nll = x[order], y[order], nll[order]
    figures = model.evaluate(x, batch_size=9, verbose=0, return_dict=True)
    assert figures["nll"] == pytest.approx(float(np.mean(nll)), abs=1e-3)
    assert abs((nll[:9].mean() + nll[9]) / 2 - nll.mean()) > 0.05  # what a mean of batch means would give

    classifier = SourceOnly(image_shape=(8, 8, 1), filters=(4,), classifier_widths=(8,))
    classifier.compile()
    predicted = keras.ops.convert_to_numpy(classifier.classify(x)[1])
    accuracy = classifier.evaluate(x, y, batch_size=9, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == pytest.approx(float(np.mean(predicted == y)), abs=1e-6)


def test_fit_evaluate_and_predict_hand_keras_datasets_without_tf_datas_autotuning(monkeypatch):
    """Keras re-iterates a dataset every epoch; with autotuning on, each old iterator's
    teardown waits seconds for tf.data's tuning thread. The models turn it off in a dataset
    (and `validation_data`) whose options leave it unset, keep a user's explicit choice, and
    hand arrays to Keras as such datasets."""
    from keras_gen.models.domain_adaptation import SourceOnly

    seen = []
    for method in ("fit", "evaluate"):
        monkeypatch.setattr(keras.Model, method, lambda self, x=None, y=None, *a, **k: seen.append((x, y, k)))
    monkeypatch.setattr(keras.Model, "predict", lambda self, x, *a, **k: seen.append((x, None, k)))
    images = tf.data.Dataset.from_tensor_slices(digits8(16)).batch(8)
    chosen = tf.data.Options()
    chosen.autotune.enabled = True
    model = tiny_gan()
    model.compile()
    model.fit(images, validation_data=images)
    model.evaluate(images)
    model.predict(images)
    model.fit(images.with_options(chosen))
    model.fit(digits8(16), batch_size=8, validation_data=(digits8(4),))
    model.fit(digits8(16), batch_size=8, validation_split=0.25)  # Keras' own pipeline splits arrays
    labelled = tf.data.Dataset.from_tensor_slices(data.load_arrays("digits", "test")).take(16).batch(8)
    classifier = SourceOnly(image_shape=(8, 8, 1), filters=(4,), classifier_widths=(8,))
    classifier.compile()
    classifier.fit(labelled)
    classifier.evaluate(*data.load_arrays("digits", "test"), batch_size=9)
    options = [getattr(x, "options", lambda: None)() for x, _, _ in seen]
    assert [o and o.autotune.enabled for o in options] == [False, False, False, True, False, None, False, False]
    assert seen[0][2]["validation_data"].options().autotune.enabled is False
    assert seen[0][2]["shuffle"] is False and "shuffle" not in seen[1][2]  # evaluate takes none
    assert seen[4][2]["validation_data"].options().autotune.enabled is False
    assert "batch_size" not in seen[4][2] and seen[4][1] is None
    assert isinstance(seen[5][0], np.ndarray) and seen[5][2]["validation_split"] == 0.25
    assert seen[7][1] is None and seen[7][0].element_spec[1].dtype == tf.int64


def test_arrays_become_batches_in_a_fresh_order_every_epoch_or_in_order():
    """The dataset that stands for arrays in `fit` (shuffled) and `evaluate` (in order):
    every example once per epoch, batches of the size asked with a smaller last one, and
    labels staying with their images."""
    from keras_gen.models.base import without_autotune_stall

    images, labels = data.load_arrays("digits", "test")
    images, labels = images[:20], labels[:20]
    train, none, kwargs = without_autotune_stall(images, labels, (), {"batch_size": 8, "epochs": 2}, shuffle=True)
    assert none is None and kwargs == {"epochs": 2, "shuffle": False}  # the dataset shuffles
    keys = {image.tobytes(): label for image, label in zip(images, labels)}
    epochs = []
    for _ in range(2):
        batches = list(train.as_numpy_iterator())
        assert [len(b[0]) for b in batches] == [8, 8, 4]
        epoch = np.concatenate([b[0] for b in batches])
        assert all(keys[image.tobytes()] == label for image, label in zip(epoch, np.concatenate([b[1] for b in batches])))
        assert sorted(image.tobytes() for image in epoch) == sorted(keys)
        epochs.append(epoch)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[0], images)
    in_order, _, _ = without_autotune_stall(images, None, (), {"batch_size": 8}, shuffle=False)
    np.testing.assert_array_equal(np.concatenate(list(in_order.as_numpy_iterator())), images)
    # fit(arrays, shuffle=False): in order, and Keras is told shuffle=False (it warned "shuffle=True
    # was passed" of the dataset that stood for the arrays); evaluate and predict are told nothing.
    in_order, _, kwargs = without_autotune_stall(images, None, (), {"batch_size": 8, "shuffle": False}, shuffle=True)
    assert kwargs == {"shuffle": False}
    np.testing.assert_array_equal(np.concatenate(list(in_order.as_numpy_iterator())), images)
    assert without_autotune_stall(images, None, (), {"batch_size": 8}, shuffle=False)[2] == {}


def test_fit_on_a_dataset_or_arrays_warns_nothing():
    """Keras 3.15 warns on every `fit(dataset)` with its default `shuffle=True` that it
    ignores it; the README's snippet must run without warnings."""
    import warnings

    model = tiny_gan()
    model.compile()
    images = digits8(32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(tf.data.Dataset.from_tensor_slices(images).batch(16), epochs=1, verbose=0)
        model.fit(images, batch_size=16, epochs=1, verbose=0)


def tiny_conditional_pixelcnn():
    from keras_gen.models import GatedPixelCNN
    return GatedPixelCNN(image_shape=(8, 8, 1), num_classes=10, filters=8, num_layers=1, kernel_size=3,
                         first_kernel_size=3)


def tiny_cgan():
    from keras_gen.models import CGAN
    return CGAN(image_shape=(8, 8, 1), num_classes=10, latent_dim=8, seed=1)


def tiny_adda():
    from keras_gen.models import ADDA
    return ADDA(image_shape=(28, 28, 1), filters=(4, 4), classifier_widths=(8,), discriminator_widths=(8,))


def digits8_labelled(n=64):
    x, y = data.load_arrays("digits", "train")
    return x[:n], y[:n].astype("int32")


@pytest.mark.parametrize("make", [tiny_gan, tiny_cgan, tiny_adda, tiny_pixelcnn])
def test_summary_after_compile_counts_every_optimizers_state(make):
    model = make()
    model.compile()
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    text = "\n".join(lines)
    optimizer_params = sum(int(np.prod(v.shape)) for v in model.optimizer.variables)
    assert optimizer_params > 0 and f"Optimizer params: {optimizer_params:,} (" in text


def test_evaluate_and_train_on_batch_lists_put_loss_first():
    from keras_gen.models import SourceOnly
    model = SourceOnly(image_shape=(8, 8, 1), filters=(4,), classifier_widths=(8,))
    model.compile()
    x, y = digits8_labelled(48)
    as_dict = model.evaluate(x, y, verbose=0, return_dict=True)
    assert model.metrics_names == ["loss", "accuracy"]
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert (loss, accuracy) == (as_dict["loss"], as_dict["accuracy"]) and loss != accuracy
    first, second = model.train_on_batch(x[:16], y[:16])
    assert first > 1.0 >= second  # an untrained 10-class classifier: loss near ln 10, accuracy at most 1
    pixelcnn = tiny_pixelcnn()
    pixelcnn.compile()
    assert pixelcnn.metrics_names[0] == "loss"
    values = pixelcnn.evaluate(digits8(32), verbose=0)
    assert values[0] == pixelcnn.evaluate(digits8(32), verbose=0, return_dict=True)["loss"]


@pytest.mark.parametrize("make", [tiny_conditional_pixelcnn, tiny_cgan])
def test_labels_may_come_as_a_column_and_then_as_a_vector(make):
    model = make()
    model.compile()
    x, y = digits8_labelled(32)
    model.fit(x, y[:, None], batch_size=16, epochs=1, verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # Keras relaxes the traced labels' rank
    assert np.isfinite(model.evaluate(x, y[:, None], verbose=0, return_dict=True)["loss"])
    one_hot = np.eye(10, dtype="int32")[y]
    with pytest.raises(KerasGenError, match=r"^expected one integer label per image: labels \[batch\] or \[batch, 1\] "
                                            r"\(not one-hot\) \(a batch of the data given to fit\)$"):
        model.fit(x, one_hot, batch_size=16, epochs=1, verbose=0)
    with pytest.raises(KerasGenError, match="labels must be integers"):
        model.fit(tf.data.Dataset.from_tensor_slices((x, y.astype("float32"))).batch(16), epochs=1, verbose=0)


def test_images_and_labels_of_different_lengths_are_refused_before_training():
    from keras_gen.models import SourceOnly
    model = SourceOnly(image_shape=(8, 8, 1), filters=(4,), classifier_widths=(8,))
    model.compile()
    x, y = digits8_labelled(48)
    before = [v.numpy().copy() for v in model.weights]
    for call in (lambda: model.fit(x[:20], y, verbose=0), lambda: model.fit(x, y[:20], verbose=0),
                 lambda: model.evaluate(x[:20], y, verbose=0),
                 lambda: model.fit(x, y, verbose=0, validation_data=(x[:10], y[:12]))):
        with pytest.raises(KerasGenError, match="one label per image: got"):
            call()
    gan = tiny_cgan()
    gan.compile()
    with pytest.raises(KerasGenError, match="got 20 images and 48 labels"):
        gan.fit(x[:20], y, verbose=0)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))


@pytest.mark.parametrize("weights", ["sample_weight", "class_weight"])
def test_example_weights_are_refused_not_ignored(weights):
    from keras_gen.models import SourceOnly
    model = SourceOnly(image_shape=(8, 8, 1), filters=(4,), classifier_widths=(8,))
    model.compile()
    x, y = digits8_labelled(32)
    value = np.ones(len(x)) if weights == "sample_weight" else {k: 1.0 for k in range(10)}
    with pytest.raises(KerasGenError, match=f"do not weigh examples: {weights}"):
        model.fit(x, y, verbose=0, **{weights: value})
    with pytest.raises(KerasGenError, match="do not weigh examples"):
        tiny_pixelcnn().fit(digits8(32), verbose=0, sample_weight=np.ones(32))


def test_reduce_lr_in_adda_stage_1_leaves_stage_2s_optimizers_as_compiled():
    model = tiny_adda()
    model.compile()
    x, y = data.load_arrays("mnist5k", "train")
    x, y = x[::100][:32], y[::100][:32].astype("int32")
    reduce = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=10.0)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[reduce])
    assert float(model.source_optimizer.learning_rate) == pytest.approx(5e-4)  # 1e-3, halved after epoch 2
    assert float(model.d_optimizer.learning_rate) == pytest.approx(2e-4)
    assert float(model.target_optimizer.learning_rate) == pytest.approx(2e-4)
    model.set_stage(2)
    assert model.optimizer.optimizers == [model.d_optimizer, model.target_optimizer]


def test_the_keras_io_learning_rate_idioms_act_on_every_player():
    """`model.optimizer.learning_rate` of a GAN read the generator's rate, `.assign` changed the
    generator's alone (silently), `=` raised an AttributeError of a missing setter, and
    `get_config()` one of a missing method."""
    model = tiny_gan()
    model.compile(d_optimizer=keras.optimizers.Adam(3e-4), g_optimizer=keras.optimizers.Adam(1e-4))
    with pytest.raises(AttributeError, match=r"different learning rates \(d_optimizer 0.0003, g_optimizer 0.0001\)"):
        model.optimizer.learning_rate
    assert set(model.optimizer.get_config()) == {"d_optimizer", "g_optimizer"}
    assert model.optimizer.get_config()["d_optimizer"]["config"]["learning_rate"] == pytest.approx(3e-4)

    class HalveEachEpoch(keras.callbacks.Callback):  # keras.io's custom learning-rate scheduler
        def on_epoch_begin(self, epoch, logs=None):
            rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            self.model.optimizer.learning_rate = rate / 2

    model.optimizer.learning_rate = 2e-4  # one rate for both
    assert [float(o.learning_rate) for o in (model.d_optimizer, model.g_optimizer)] == pytest.approx([2e-4, 2e-4])
    model.fit(digits8(16), batch_size=16, epochs=2, verbose=0, callbacks=[HalveEachEpoch()])
    assert [float(o.learning_rate) for o in (model.d_optimizer, model.g_optimizer)] == pytest.approx([5e-5, 5e-5])
    model.optimizer.learning_rate.assign(1e-3)
    assert [float(o.learning_rate) for o in (model.d_optimizer, model.g_optimizer)] == pytest.approx([1e-3, 1e-3])
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)

    scheduled = tiny_gan()  # a rate that follows a schedule cannot be set: refused before any is changed
    scheduled.compile(d_optimizer=keras.optimizers.Adam(3e-4),
                      g_optimizer=keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-4, 10, 0.5)))
    with pytest.raises(TypeError, match="g_optimizer follow a LearningRateSchedule"):
        scheduled.optimizer.learning_rate = 1e-5
    assert float(scheduled.d_optimizer.learning_rate) == pytest.approx(3e-4)

    adda = tiny_adda()  # the stage's optimizers only: stage 1 trains the source optimizer alone
    adda.compile()
    adda.optimizer.learning_rate = 5e-4
    assert [float(o.learning_rate) for o in (adda.source_optimizer, adda.d_optimizer, adda.target_optimizer)] \
        == pytest.approx([5e-4, 2e-4, 2e-4])
    adda.set_stage(2)
    adda.optimizer.learning_rate.assign(1e-4)
    assert [float(o.learning_rate) for o in (adda.source_optimizer, adda.d_optimizer, adda.target_optimizer)] \
        == pytest.approx([5e-4, 1e-4, 1e-4])


def test_predict_and_call_refuse_float_or_misshapen_images_in_one_line():
    from keras_gen.models import SourceOnly
    classifier = SourceOnly(image_shape=(8, 8, 1), filters=(4,), classifier_widths=(8,))
    pixelcnn = tiny_pixelcnn()
    x = digits8(16)
    assert classifier.predict(x, verbose=0).shape == (16, 10) and pixelcnn.predict(x, verbose=0).shape[:4] == x.shape
    # A domain-adaptation classifier takes the other of grey / RGB too (a source's images, as
    # in training); a likelihood model only its own channels.
    rgb = np.repeat(x, 3, axis=-1)
    assert classifier.predict(rgb, verbose=0).shape == (16, 10)
    for model, labels in ((classifier, []), (pixelcnn, []), (tiny_conditional_pixelcnn(), [np.zeros(16, "int32")])):
        bads = (x.astype("float32") / 255, np.zeros((16, 9, 9, 1), np.uint8)) + (() if model is classifier else (rgb,))
        expected = r"uint8 images \[batch, 8, 8, 1 or 3\]" if model is classifier else r"uint8 images \[batch, 8, 8, 1\]"
        for bad in bads:
            inputs = [bad, *labels] if labels else bad
            with pytest.raises(KerasGenError, match=expected):
                model.predict(inputs, verbose=0)
            with pytest.raises(KerasGenError, match=expected):
                model(inputs if labels else tf.constant(bad))


def test_a_generator_of_bare_image_batches_trains_and_bad_validation_labels_fail_first():
    from keras_gen.models import SourceOnly
    pixelcnn = tiny_pixelcnn()
    pixelcnn.compile()
    x = digits8(32)
    history = pixelcnn.fit((x[i:i + 16] for i in (0, 16)), epochs=1, steps_per_epoch=2, verbose=0).history
    assert np.isfinite(history["loss"][0])
    classifier = SourceOnly(image_shape=(8, 8, 1), filters=(4,), classifier_widths=(8,))
    classifier.compile()
    before = [v.numpy().copy() for v in classifier.weights]
    images, labels = digits8_labelled(32)
    with pytest.raises(KerasGenError, match=r"labels must be in 0\.\.9"):
        classifier.fit(images, labels, verbose=0, validation_data=(images, labels + 10))
    conditional = tiny_conditional_pixelcnn()
    conditional.compile()
    with pytest.raises(KerasGenError, match=r"labels must be in 0\.\.9"):
        conditional.fit(images, labels, verbose=0, validation_data=(images, labels + 10))
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, classifier.weights))


def test_no_data_strings_dicts_and_python_lists_are_one_line_errors():
    from keras_gen.models import SourceOnly
    x = digits8(8)
    models = [tiny_gan(), tiny_pixelcnn(), SourceOnly(image_shape=(8, 8, 1), filters=(4,), classifier_widths=(8,))]
    for model in models:
        model.compile()
        for bad, got in ((None, "nothing"), ("images", "a str"), ({"x": x}, "a dict"), (list(x), "a list"),
                         ((x, x), "a tuple")):
            for call in (model.fit, model.evaluate):
                with pytest.raises(KerasGenError, match=f"takes uint8 images as one array .*; got {got}$"):
                    call(bad, verbose=0)
