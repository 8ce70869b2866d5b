"""The Recipe: one source of settings for the CLI, run.json, zoo recipes and zoo builds."""
import json

import pytest

from keras_gen.errors import KerasGenError
from keras_gen.recipe import Recipe


def test_defaults_are_filled_from_the_registry_and_round_trip():
    recipe = Recipe("pixelcnn")
    assert recipe.data == ("mnist5k",) and recipe.epochs is None
    resolved = recipe.resolved()
    assert (resolved.epochs, resolved.batch_size) == (10, 64)
    assert Recipe.from_dict(json.loads(resolved.to_json())) == resolved


def test_overrides_reach_every_section_with_json_values():
    recipe = Recipe("dcgan").with_overrides([
        "epochs=3", "data=[\"digits\"]", "image_size=28", "hparams.latent_dim=32",
        "compile.loss=hinge", "compile.augment=[\"translation\", \"cutout\"]", "compile.jit_compile=true",
    ])
    assert recipe.epochs == 3 and recipe.data == ("digits",) and recipe.image_size == 28
    assert recipe.hparams == {"latent_dim": 32}
    assert recipe.compile == {"loss": "hinge", "augment": ["translation", "cutout"], "jit_compile": True}
    # A later assignment wins, and the original is untouched (frozen).
    assert recipe.with_overrides(["hparams.latent_dim=8"]).hparams == {"latent_dim": 8}
    assert recipe.hparams == {"latent_dim": 32}


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("epoch=3", "unknown recipe key"),
        ("epochs", "key=value"),
        ("epochs=0", "epochs must be"),
        ("epochs=2.5", "epochs must be"),
        ("seed=-1", "seed must be"),
        ("precision=float16", "precision must be"),
        ("data=[\"nope\"]", "unknown dataset"),
        ("data=[\"mnist5k\", \"digits\"]", "takes 1 dataset"),
        ("optimizer.lr=1", "dotted key"),
        ("hparams={}", "one at a time"),
        ("model=pixelcnn", "one at a time"),
        ("image_size=2000", "image_size must be .* 1,024"),  # the loaders' bound, not a larger one of its own
    ],
)
def test_bad_overrides_are_one_line_errors(assignment, message):
    with pytest.raises(KerasGenError, match=message):
        Recipe("dcgan").with_overrides([assignment])


def test_a_key_set_twice_is_refused_not_ranked():
    """`--set epochs=-1 --set epochs=1` ran with the last value, where a flag and a --set of one
    key are refused."""
    with pytest.raises(KerasGenError, match="--set epochs is given twice; give it once"):
        Recipe("dcgan").with_overrides(["epochs=-1", "epochs=1"])
    with pytest.raises(KerasGenError, match="--set hparams.latent_dim is given twice"):
        Recipe("dcgan").with_overrides(["hparams.latent_dim=8", "hparams.latent_dim=16"])
    assert Recipe("dcgan").with_overrides(["hparams.latent_dim=8", "compile.loss=hinge"]).hparams == {"latent_dim": 8}


def test_files_and_dicts_are_checked(tmp_path):
    with pytest.raises(KerasGenError, match="unknown model"):
        Recipe("nope")
    with pytest.raises(KerasGenError, match="does not exist"):
        Recipe.from_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KerasGenError, match="not valid JSON"):
        Recipe.from_file(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(KerasGenError, match="JSON object"):
        Recipe.from_file(tmp_path / "list.json")
    with pytest.raises(KerasGenError, match="names no model"):
        Recipe.from_dict({"epochs": 3})
    with pytest.raises(KerasGenError, match="hparams must be a mapping"):
        Recipe("dcgan", hparams=[1])


def test_every_zoo_recipe_is_a_valid_recipe():
    from keras_gen import zoo

    for name in zoo.list():
        recipe = zoo.recipe(name)
        assert recipe.epochs and recipe.batch_size and recipe.description


def test_precision_is_auto_unless_a_recipe_says_otherwise():
    from keras_gen import zoo

    assert Recipe("dcgan").precision == "auto"
    assert Recipe("dcgan").with_overrides(["precision=mixed_bfloat16"]).precision == "mixed_bfloat16"
    with pytest.raises(KerasGenError, match="precision must be one of auto, float32, mixed_bfloat16"):
        Recipe("dcgan", precision="bfloat16")
    for name in zoo.list():  # a zoo entry names the precision it was trained with
        assert json.loads((zoo.entry_dir(name) / "recipe.json").read_text())["precision"] in ("float32", "mixed_bfloat16")


def test_huge_numbers_are_refused_before_tensorflow_sees_them():
    import pytest

    from keras_gen.errors import KerasGenError

    for key, value in [("batch_size", 10**20), ("epochs", 10**20), ("image_size", 10**6), ("batch_size", 0)]:
        with pytest.raises(KerasGenError, match=f"{key} must be a whole number from 1 to"):
            Recipe(model="dcgan", **{key: value})


@pytest.mark.parametrize("model", [["dcgan"], {"a": 1}])
def test_a_model_named_by_a_list_or_an_object_is_an_unknown_model(model, tmp_path):
    """A TypeError from the registry's dict (unhashable) before."""
    with pytest.raises(KerasGenError, match="unknown model"):
        Recipe.from_dict({"model": model})
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"model": model}))
    with pytest.raises(KerasGenError, match="unknown model"):
        Recipe.from_file(path)


def test_values_a_recipe_cannot_hold_are_one_line_errors():
    """Before: data=5 or null gave a TypeError traceback, a NumPy seed passed and then broke
    to_json, compile.optimizer.learning_rate became a key named "optimizer.learning_rate",
    notes=null and NaN were taken (and NaN written as invalid JSON)."""
    import numpy as np

    base = Recipe("dcgan")
    for assignment, message in (("data=5", "data must be a dataset name or a list"),
                                ("data=null", "data must be a dataset name or a list"),
                                ("data=[1]", "data must be a dataset name or a list"),
                                ("compile.optimizer.learning_rate=1e-3", "one level deep"),
                                ("notes=null", "notes must be text"), ("description=7", "description must be text"),
                                ("hparams.latent_dim=NaN", "NaN is not a JSON value"),
                                ("epochs=Infinity", "Infinity is not a JSON value")):
        with pytest.raises(KerasGenError, match=message):
            base.with_overrides([assignment])
    recipe = Recipe("dcgan", seed=np.int64(3))
    assert type(recipe.seed) is int and json.loads(recipe.to_json())["seed"] == 3
