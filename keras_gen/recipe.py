"""The Recipe: the one source of a training run's settings.

The CLI (`keras-gen train MODEL --set key=value`, `--recipe FILE`), a zoo entry's
`recipe.json`, a run folder's `run.json` and `keras-gen zoo build` all read and write this
one dataclass, so what a zoo card says is exactly what `zoo build` reruns. No TensorFlow here.

    Recipe(model="wgan-gp", data=("mnist5k",), hparams={"latent_dim": 64},
           compile={"penalty_weight": 10.0}, epochs=30, batch_size=64, seed=0)

- `hparams`: the model's constructor arguments (architecture, latent size, EMA, ...).
- `compile`: its `compile()` arguments (loss pair, penalties and stabilisers, optimizers as
  Keras configs such as {"class_name": "Adam", "config": {"learning_rate": 1e-4}},
  `jit_compile`).
- `precision`: "auto" (default; bfloat16 mixed precision only on a CPU with native bfloat16,
  resolved on the machine that builds the model), "float32" or "mixed_bfloat16".
- `data`: dataset names, one per role the model takes (one for image models; a source and
  a target for domain adaptation); conditional models take the labels that come with them.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from keras_gen import registry
from keras_gen.data.loaders import EMBEDDED as EMBEDDED_DATA
from keras_gen.data.loaders import MAX_IMAGE_SIZE  # one bound: what the loaders resize to
from keras_gen.errors import KerasGenError
from keras_gen.seeds import check_seed

# "auto" (the default): mixed_bfloat16 where the CPU has native bfloat16 (AVX-512-BF16, AMX),
# float32 elsewhere, decided when the model is built (`keras_gen.hardware.resolve_precision`).
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
DATA_NAME = re.compile(rf"^({'|'.join(EMBEDDED_DATA)}|tfds:[A-Za-z0-9_./:-]+)$")


def check_data_name(name) -> str:
    if not isinstance(name, str) or not DATA_NAME.match(name):
        raise KerasGenError(
            f"unknown dataset {name!r} (embedded: {', '.join(EMBEDDED_DATA)}; or tfds:<name>)"
        )
    return name


# Bounds that keep a typo from reaching TensorFlow as an int32 overflow (a traceback) or a
# run of years: far above any real run of keras-gen's size.
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 1_000_000


def _refuse_constant(name):
    """json's hook for NaN and ±Infinity, which strict JSON (and so a recipe) does not have."""
    raise KerasGenError(f"{name} is not a JSON value; a recipe holds finite numbers only")


def _positive(value, what, maximum):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise KerasGenError(f"{what} must be a whole number from 1 to {maximum:,}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything a training run needs; `resolved()` fills the model's defaults."""

    model: str
    data: tuple = ("mnist5k",)
    image_size: int | None = None
    hparams: dict = dataclasses.field(default_factory=dict)
    compile: dict = dataclasses.field(default_factory=dict)
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    precision: str = "auto"
    description: str = ""
    notes: str = ""

    def __post_init__(self):
        spec = registry.spec(self.model)
        data = (self.data,) if isinstance(self.data, str) else self.data
        if not isinstance(data, (list, tuple)) or not all(isinstance(n, str) for n in data):
            raise KerasGenError(f"recipe data must be a dataset name or a list of names, got {self.data!r}"[:300])
        data = tuple(data)
        object.__setattr__(self, "data", data)
        if len(data) != len(spec.data_roles):
            raise KerasGenError(
                f"{self.model} takes {len(spec.data_roles)} dataset(s) ({', '.join(spec.data_roles)}), got {list(data)}"
            )
        for name in data:
            check_data_name(name)
        for field in ("hparams", "compile"):
            value = getattr(self, field)
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise KerasGenError(f"recipe {field} must be a mapping of names to values, got {value!r}")
        if self.image_size is not None:
            _positive(self.image_size, "image_size", MAX_IMAGE_SIZE)
        if self.epochs is not None:
            _positive(self.epochs, "epochs", MAX_EPOCHS)
        if self.batch_size is not None:
            _positive(self.batch_size, "batch_size", MAX_BATCH_SIZE)
        object.__setattr__(self, "seed", check_seed(self.seed))  # a Python int (np.int64 is no JSON)
        for field in ("description", "notes"):
            if not isinstance(getattr(self, field), str):
                raise KerasGenError(f"recipe {field} must be text, got {getattr(self, field)!r}"[:300])
        if self.precision not in PRECISIONS:
            raise KerasGenError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def resolved(self) -> "Recipe":
        """This recipe with the model's default epochs and batch size filled in."""
        spec = registry.spec(self.model)
        return dataclasses.replace(
            self,
            epochs=self.epochs or spec.default_epochs,
            batch_size=self.batch_size or spec.default_batch_size,
        )

    # -- dict and JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["data"] = list(self.data)
        return d

    def differences(self, other, mine, theirs) -> str:
        """The settings where this recipe and `other` differ, for an error message, e.g.
        "epochs 2 there, 5 asked" (`mine` = "there", `theirs` = "asked"), "; "-separated."""
        a, b = self.to_dict(), other.to_dict()
        return "; ".join(f"{key} {json.dumps(a[key])} {mine}, {json.dumps(b[key])} {theirs}"
                         for key in a if a[key] != b[key])

    @classmethod
    def from_dict(cls, d, what="recipe") -> "Recipe":
        if not isinstance(d, dict):
            raise KerasGenError(f"{what} must be a JSON object, got {type(d).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise KerasGenError(f"{what} has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
        if "model" not in d:
            raise KerasGenError(f"{what} names no model")
        return cls(**d)

    @classmethod
    def from_file(cls, path) -> "Recipe":
        path = Path(path)
        try:
            d = json.loads(path.read_text(), parse_constant=_refuse_constant)
        except FileNotFoundError:
            raise KerasGenError(f"recipe file {str(path)!r} does not exist") from None
        except IsADirectoryError:
            raise KerasGenError(f"recipe {str(path)!r} is a folder, not a JSON file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise KerasGenError(f"recipe {str(path)!r} is not valid JSON ({exc})") from None
        return cls.from_dict(d, what=f"recipe {str(path)!r}")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    # -- overrides: key=value -------------------------------------------------------------------
    def with_overrides(self, assignments) -> "Recipe":
        """A copy with `key=value` assignments applied, e.g. `epochs=5`,
        `hparams.latent_dim=32`, `compile.loss=hinge`, `compile.augment=["translation"]`.

        Values are JSON (numbers, lists, objects, true/false/null); anything that is not
        valid JSON is taken as a string.
        """
        d = self.to_dict()
        seen = set()
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            if not sep or not key:
                raise KerasGenError(f"--set takes key=value, got {assignment!r}")
            if key in seen:  # as a flag and a --set of one key are: refused, not ranked
                raise KerasGenError(f"--set {key} is given twice; give it once")
            seen.add(key)
            try:
                value = json.loads(text, parse_constant=_refuse_constant)
            except json.JSONDecodeError:
                value = text
            section, dot, name = key.partition(".")
            if dot:
                if section not in ("hparams", "compile") or not name or "." in name:
                    raise KerasGenError(f"--set {key}: only hparams.<name> and compile.<name> take a dotted key, one "
                                        "level deep (set a nested value as a JSON object, e.g. compile.optimizer={...})")
                d[section] = {**d[section], name: value}
            elif key in ("hparams", "compile", "model"):
                raise KerasGenError(f"--set {key}=...: set hparams.<name> / compile.<name> one at a time")
            elif key not in d:
                raise KerasGenError(
                    f"--set {key}: unknown recipe key; known: {', '.join(sorted(d))} "
                    "(and hparams.<name>, compile.<name>)"
                )
            else:
                d[key] = value
        return Recipe.from_dict(d)
