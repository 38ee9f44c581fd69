"""TrainConfig: the one validation shared by the Python API and the CLI."""

import pytest

from hogwild.config import TrainConfig
from hogwild.errors import ConfigError


def test_defaults_validate():
    config = TrainConfig().validate()
    assert config.effective_penalty == "l2"
    assert config.l2_strength == config.l2 and config.l1_strength == 0.0


@pytest.mark.parametrize(
    "changes, option",
    [
        ({"threads": -3}, "threads"),
        ({"threads": 0}, "threads"),
        ({"mode": "turbo"}, "mode"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"decay": 1.5}, "decay"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"model": "mlp", "hidden": (0,)}, "hidden"),
        ({"model": "mlp", "hidden": (8, 8, 8, 8)}, "hidden"),
        ({"penalty": "l1"}, "penalty"),
        ({"schedule": "optimal", "l2": 0.0}, "schedule"),
        ({"resume": True}, "resume"),
        ({"clip": -1.0}, "clip"),
        ({"intercept_decay": 0.0}, "intercept_decay"),
    ],
)
def test_bad_values_name_the_option(changes, option):
    with pytest.raises(ConfigError) as info:
        TrainConfig().replace(**changes)
    assert info.value.option == option
    assert "--" in str(info.value)


def test_unknown_option_is_refused():
    with pytest.raises(ConfigError, match="unknown option"):
        TrainConfig().replace(learning_rat=0.1)


def test_penalty_auto_resolves_from_strengths():
    assert TrainConfig(l2=0.0, l1=1e-4, schedule="constant").validate().effective_penalty == "l1"
    assert TrainConfig(l2=1e-4, l1=1e-4).validate().effective_penalty == "elasticnet"
    assert TrainConfig(l2=0.0, schedule="constant").validate().effective_penalty == "none"


def test_intercept_decay_default_resolves_like_scikit_learn():
    optimal = TrainConfig(schedule="optimal").validate()
    assert optimal.effective_intercept_decay(sparse_input=True) == 0.01
    assert optimal.effective_intercept_decay(sparse_input=False) == 1.0
    assert TrainConfig().validate().effective_intercept_decay(sparse_input=True) == 1.0  # auto: adagrad
    assert TrainConfig(schedule="optimal", intercept_decay=0.5).validate().effective_intercept_decay(True) == 0.5


def test_dict_round_trip():
    config = TrainConfig(model="mlp", hidden=(16, 8), mode="sync", seed=7).validate()
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config
