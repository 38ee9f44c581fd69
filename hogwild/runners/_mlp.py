"""What the MLP runners (CPU and CUDA) share: the data in kernel form, the training state, the config rules.

`MLPData` turns a `hogwild.problem.Problem` into what the MLP kernels read (`hogwild._inputs.Features`: dense
input stays dense, sparse input is CSR), targets in the kernels' form (a class index per row, or the
regression values), the output kind and the layer sizes. `MLPState` is the flat parameter vector (layout in
`hogwild.kernels.mlp`), the optimizer's two state vectors and step counter, and the progress of the current
epoch: everything a checkpoint holds.

Options that mean something different for an MLP: ``schedule`` scales the optimizer's ``lr`` per epoch
(`hogwild.loop.epoch_rate`); the linear models' ``optimal`` (Bottou's 1/(l2 t) step, which assumes a convex
objective) and ``adagrad`` (the per-coordinate step that ``optimizer="rmsprop"``/``"adam"`` provide) are
refused by name.
"""

from __future__ import annotations

import numpy as np

from .._inputs import Features
from ..errors import CheckpointError, ConfigError
from ..models import MLPModel, init_mlp_params

MLP_LOSSES = ("log_loss", "squared_error")
_LINEAR_SCHEDULES = ("optimal", "adagrad", "normalized", "ftrl")


def check_mlp_config(config):
    """Options an MLP cannot honour, refused by name."""
    if config.schedule in _LINEAR_SCHEDULES:
        raise ConfigError(
            "schedule",
            f"--schedule {config.schedule} is for linear models; with --model mlp use constant, decay, invscaling "
            "or adaptive (the optimizer, e.g. --optimizer adam, adapts the step)",
        )
    if not (config.adam_epsilon > 0 and np.isfinite(config.adam_epsilon)):
        raise ConfigError("adam_epsilon", f"--adam-epsilon must be a positive number; got {config.adam_epsilon!r}")
    if config.loss not in MLP_LOSSES:
        raise ConfigError(
            "loss",
            f"--loss {config.loss} is not available with --model mlp; use log_loss (classification) or "
            "squared_error (regression)",
        )


class MLPData:
    """The training rows as the MLP kernels read them, the encoded targets and the network's layer sizes."""

    def __init__(self, problem, config):
        self.dtype = np.dtype(config.dtype)
        self.features = Features(problem.X, self.dtype)
        self.classes = problem.classes
        self.y_index, self.y_value, self.output = encode_targets(problem.labels, problem.classes, self.dtype)
        if problem.classes is None:
            n_outputs = self.y_value.shape[1]
        else:
            n_outputs = 1 if self.output == "logistic" else problem.classes.size
        self.dims = np.array([self.features.n_features, *config.hidden, n_outputs], dtype=np.int64)
        # One weight per row, or one for all rows when the user gave none (the kernels read weight[0] then).
        weights = np.ones(1) if problem.sample_weight is None else problem.sample_weight
        self.sample_weight = np.ascontiguousarray(weights, dtype=self.dtype)


def encode_targets(labels, classes, dtype):
    """``(y_index, y_value, output)``: the class index of each row (classification) or the regression values."""
    if classes is None:
        values = np.ascontiguousarray(labels.reshape(labels.shape[0], -1), dtype=dtype)
        return np.zeros(1, dtype=np.int64), values, "identity"
    index = np.searchsorted(classes, labels).astype(np.int64)
    return index, np.zeros((1, 1), dtype=dtype), "logistic" if classes.size == 2 else "softmax"


class MLPState:
    """Weights, optimizer state and the current epoch's progress of one MLP training run.

    ``params`` (flat, `hogwild.kernels.mlp.layout`), ``state1``/``state2`` (the optimizer's per-parameter
    state), ``step`` (one int64: the optimizer's step counter, shared by all workers), ``progress`` (rows each
    worker has done in the current epoch; ``sync``: the rows done, in its first slot) and ``loss_sum`` (their
    summed loss); both are zero between epochs.
    """

    ARRAYS = ("params", "state1", "state2", "progress")

    def __init__(self, data, config, n_workers, init_model=None):
        dims = data.dims
        if init_model is not None:
            if [int(d) for d in getattr(init_model, "dims", [])] != [int(d) for d in dims]:
                raise ConfigError(
                    "hidden",
                    f"init_model has layers {list(getattr(init_model, 'dims', []))} but the data and --hidden give "
                    f"{list(dims)}",
                )
            params = np.array(init_model.params, dtype=data.dtype)
        else:
            params = init_mlp_params(dims, config.activation, config.seed, data.dtype)
        self.params = params
        self.state1 = np.zeros_like(params)
        self.state2 = np.zeros_like(params)
        self.step = np.zeros(1, dtype=np.int64)
        self.progress = np.zeros(n_workers, dtype=np.int64)
        self.loss_sum = 0.0
        self.dims, self.activation, self.output, self.classes = dims, config.activation, data.output, data.classes

    def model(self, copy=True):
        params = self.params.copy() if copy else self.params
        classes = None if self.classes is None else self.classes.copy()
        return MLPModel(params, self.dims, self.activation, self.output, classes)

    def export(self):
        out = {name: getattr(self, name).copy() for name in self.ARRAYS}
        out.update(step=int(self.step[0]), loss_sum=float(self.loss_sum), dims=[int(d) for d in self.dims],
                   activation=self.activation, output=self.output)
        return out

    def restore(self, values):
        """Take over a state `export` described, after checking it fits (`CheckpointError` otherwise).

        Arrays are copied into the existing ones: the runner, its workers and the live model hold them.
        """
        try:
            arrays = {name: np.asarray(values[name]) for name in self.ARRAYS}
            step, loss_sum = int(values["step"]), float(values["loss_sum"])
            dims = [int(d) for d in values["dims"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the saved MLP state is incomplete ({type(exc).__name__}: {exc})") from None
        if dims != [int(d) for d in self.dims] or values.get("output") != self.output:
            raise CheckpointError(
                f"the saved state holds a network with layers {dims}, but this run has {list(self.dims)}; resume "
                "with the same data and --hidden"
            )
        if arrays["progress"].shape != self.progress.shape and not np.any(arrays["progress"]):
            arrays["progress"] = np.zeros_like(self.progress)  # between epochs another --threads is fine
        for name, array in arrays.items():
            mine = getattr(self, name)
            if array.shape != mine.shape or array.dtype != mine.dtype:
                what = "--threads" if name == "progress" else "--dtype"
                raise CheckpointError(
                    f"the saved state's {name} is {array.dtype}{list(array.shape)}, but this run needs "
                    f"{mine.dtype}{list(mine.shape)}; resume with the same {what}"
                )
        for name, array in arrays.items():
            getattr(self, name)[...] = array
        self.step[0], self.loss_sum = step, loss_sum

    def parameters(self):
        return {"params": self.params, "state1": self.state1, "state2": self.state2}


def refuse_weights(problem, device):
    """A `ConfigError` for per-row weights on a runner whose kernels have none."""
    if problem.sample_weight is not None:
        raise ConfigError(
            "sample_weight",
            f"sample_weight and class_weight are not supported by the MLP on --device {device}; "
            "train on --device cpu, or drop them",
        )
