"""Peer systems for ``hogwild bench``: each runner trains on the bench's shared split and returns run records.

Every runner takes ``(problem, config, *, threads, epochs, repeats, progress)`` and returns a list of records
with ``system, mode, threads, device, epochs, repeat_seconds`` (training seconds of each repeat),
``epoch_seconds`` (per epoch, first repeat), ``trace`` (``[cumulative seconds, objective]`` after each epoch, or
None with ``trace_reason``), ``train_loss`` (the bench's objective of the final parameters, computed by
`hogwild.bench_problem.BenchProblem`, never the peer's own report) and the test metrics. A peer whose package is
missing, or that cannot train this loss or model, returns one record with ``skipped: True`` and a ``reason``.

How each peer is run, and what its time covers:

- **sklearn** (``SGDClassifier``/``SGDRegressor``): same loss, penalty (``alpha``/``l1_ratio`` from l2/l1) and
  epochs; ``schedule`` constant/optimal/invscaling map to its ``learning_rate`` with ``eta0=lr``; decay and
  adagrad have no counterpart and run as ``optimal`` (noted in the record). Epochs are a ``partial_fit`` loop
  (one pass per call, the step counter carries over, exactly as ``fit(max_iter=epochs, tol=None)``); each call
  is timed, the objective is evaluated between calls, untimed. It gets float64 data (its kernels convert
  anything else on every call). Single-threaded: one record at 1 thread.
  For MLPs, ``MLPClassifier``/``MLPRegressor`` with the same layers, activation, optimizer, batch size and
  learning rate, ``alpha = l2 * batch_size`` (scikit-learn divides the penalty by the batch size); BLAS threads
  are limited to each thread count with threadpoolctl.
- **vw** (Vowpal Wabbit, ``vowpalwabbit``): the training CSR is written as VW text in a temporary folder, then a
  one-pass untimed run builds the cache; the timed run trains ``epochs`` passes from that cache
  (``--passes --cache_file --holdout_off``), so conversion and parsing text are excluded. Same loss
  (logistic/hinge/squared), ``--l2`` = l2, VW's own default step (``-l 0.5``, adaptive, normalized, invariant
  updates: its defaults are what its users run). Weights are read back through VW's hash of each feature
  number. VW trains all passes inside one driver call, so there is no per-pass trace.
- **liblinear** (``liblinear-official``): the accuracy reference. ``C = 1/(l2 * n)`` (``1/(2 l2 n)`` for
  squared error) makes its objective a multiple of ours; ``-B 1`` adds a bias (LIBLINEAR regularizes it, a small
  difference). Only ``train()`` is timed, not building its problem. It runs to its own tolerance, not in
  epochs: ``seconds_total`` is the solve, and time-to-target is that whole solve when it gets there.
- **torch** (PyTorch CPU, MLPs only): ``minibatch``: plain minibatch training with ``torch.set_num_threads(T)``;
  ``hogwild``: PyTorch's own Hogwild recipe, ``torch.multiprocessing`` with ``model.share_memory()`` and T
  processes (each one thread, its own optimizer, its own shard), held between epochs (queues) so that each
  epoch is timed and the shared model is scored while they wait. Process start-up is excluded.
"""

from __future__ import annotations

import importlib
import math
import os
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp

PEERS = ("sklearn", "vw", "liblinear", "torch")


def skipped(system, reason, mode="-", threads=None, device="cpu"):
    """The record of a peer that did not run, and why."""
    return {"system": system, "mode": mode, "threads": threads, "device": device, "skipped": True, "reason": reason}


def _optional(module_name):
    """The module, or None when it is not installed (or is blocked, as tests do with ``sys.modules[name] = None``)."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        return None


def run_peer(name, problem, config, *, threads=(1,), epochs=5, repeats=1, progress=None):
    """Records of peer ``name`` on ``problem``; a missing package or unsupported setting gives a skipped record."""
    progress = progress or (lambda message: None)
    model = getattr(config, "model", "linear")
    if name == "sklearn":
        if model == "mlp":
            return sklearn_mlp(problem, config, threads=threads, epochs=epochs, repeats=repeats, progress=progress)
        return sklearn_sgd(problem, config, epochs=epochs, repeats=repeats, progress=progress)
    if name == "vw":
        if model == "mlp":
            return [skipped("vw", "the Vowpal Wabbit peer runs linear models only")]
        return vowpal_wabbit(problem, config, epochs=epochs, repeats=repeats, progress=progress)
    if name == "liblinear":
        if model == "mlp":
            return [skipped("liblinear", "LIBLINEAR trains linear models only")]
        return liblinear(problem, config, repeats=repeats, progress=progress)
    if name == "torch":
        if model != "mlp":
            return [skipped("torch", "the PyTorch peer runs MLPs only (use --model mlp)")]
        return torch_mlp(problem, config, threads=threads, epochs=epochs, repeats=repeats, progress=progress)
    raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")


def _float64(problem, which="X_train"):
    """A float64 copy of the problem's matrix, made once and kept on the problem for every later peer run."""
    key = f"_{which}_float64"
    cached = problem.__dict__.get(key)
    if cached is None:
        X = getattr(problem, which)
        cached = X if X.dtype == np.float64 else X.astype(np.float64)
        if sp.issparse(cached):
            cached = cached.tocsr()
        problem.__dict__[key] = cached
    return cached


def _finish(record, problem, score, params, trace):
    """Fill the objective and test metrics of ``record`` from the final ``params``."""
    objective, metrics = score(*params)
    record.update(metrics)
    record["train_loss"] = objective
    record["trace"] = trace
    return record


# --- scikit-learn ---------------------------------------------------------------------------------------
def sklearn_sgd_params(config):
    """SGDClassifier/SGDRegressor keyword arguments matching ``config`` and a note on what could not match."""
    penalty = config.effective_penalty
    params = {
        "loss": config.loss,
        "fit_intercept": config.fit_intercept,
        "epsilon": config.epsilon,
        "shuffle": config.shuffle,
        "random_state": config.seed,
        "eta0": config.lr,
        "power_t": config.power_t,
        "max_iter": 1,
        "tol": None,
    }
    if penalty == "none":
        params.update(penalty=None, alpha=0.0)
    elif penalty == "elasticnet":
        params.update(penalty="elasticnet", alpha=config.l1 + config.l2, l1_ratio=config.l1 / (config.l1 + config.l2))
    else:
        params.update(penalty=penalty, alpha=config.l1 if penalty == "l1" else config.l2)
    note = None
    schedule = config.effective_schedule
    if schedule not in ("constant", "optimal", "invscaling"):
        schedule = "optimal" if params["alpha"] > 0 else "invscaling"
        note = f"scikit-learn has no {config.effective_schedule!r} schedule; ran learning_rate={schedule!r}"
    params["learning_rate"] = schedule
    return params, note


def _sklearn_linear_params(estimator, problem):
    coef = np.asarray(estimator.coef_, dtype=np.float64)
    intercept = np.asarray(estimator.intercept_, dtype=np.float64)
    if problem.task == "multiclass":
        return coef.T, intercept
    return coef.reshape(-1), float(intercept.reshape(-1)[0])


def sklearn_sgd(problem, config, *, epochs, repeats, progress):
    """scikit-learn's SGDClassifier/SGDRegressor, one timed ``partial_fit`` per epoch."""
    linear_model = _optional("sklearn.linear_model")
    if linear_model is None:
        return [skipped("sklearn", "scikit-learn is not installed (pip install scikit-learn)", "SGD", 1)]
    import sklearn

    params, note = sklearn_sgd_params(config)
    make = linear_model.SGDRegressor if problem.task == "regression" else linear_model.SGDClassifier
    X = _float64(problem)
    y = problem.y_train
    record = {"system": "sklearn", "mode": "SGD", "threads": 1, "device": "cpu", "epochs": epochs, "version": sklearn.__version__}
    if note:
        record["note"] = note
    repeat_seconds, trace, epoch_seconds, estimator = [], [], [], None
    for repeat in range(repeats):
        estimator = make(**params)
        extra = {} if problem.task == "regression" else {"classes": problem.classes}
        total = 0.0
        for epoch in range(epochs):
            start = time.perf_counter()
            estimator.partial_fit(X, y, **extra)
            seconds = time.perf_counter() - start
            total += seconds
            if repeat == 0:
                epoch_seconds.append(seconds)
                coef, intercept = _sklearn_linear_params(estimator, problem)
                trace.append([total, problem.linear_objective(coef, intercept)])
        repeat_seconds.append(total)
        progress(f"sklearn SGD: {total:.3f} s for {epochs} epochs (repeat {repeat + 1}/{repeats})")
    record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds)
    coef, intercept = _sklearn_linear_params(estimator, problem)
    return [_finish(record, problem, _linear_score(problem), (coef, intercept), trace)]


def _linear_score(problem):
    return lambda coef, intercept: (problem.linear_objective(coef, intercept), problem.linear_test_metrics(coef, intercept))


def _mlp_score(problem, activation):
    return lambda weights, biases: (
        problem.mlp_objective(weights, biases, activation),
        problem.mlp_test_metrics(weights, biases, activation),
    )


def sklearn_mlp(problem, config, *, threads, epochs, repeats, progress):
    """scikit-learn's MLPClassifier/MLPRegressor, one timed ``partial_fit`` (one epoch) per epoch, per thread count."""
    neural_network = _optional("sklearn.neural_network")
    threadpoolctl = _optional("threadpoolctl")
    if neural_network is None:
        return [skipped("sklearn", "scikit-learn is not installed (pip install scikit-learn)", "MLP", None)]
    if config.optimizer == "rmsprop":
        return [skipped("sklearn", "scikit-learn's MLP has no RMSprop optimizer", "MLP", None)]
    import sklearn

    activation = {"sigmoid": "logistic"}.get(config.activation, config.activation)
    params = {
        "hidden_layer_sizes": tuple(config.hidden),
        "activation": activation,
        "solver": "adam" if config.optimizer == "adam" else "sgd",
        "momentum": config.momentum if config.optimizer == "momentum" else 0.0,
        "nesterovs_momentum": False,
        "learning_rate_init": config.lr,
        "beta_1": config.beta1,
        "beta_2": config.beta2,
        "alpha": config.l2 * config.batch_size,  # scikit-learn divides its L2 term by the batch size
        "batch_size": config.batch_size,
        "shuffle": config.shuffle,
        "random_state": config.seed,
    }
    make = neural_network.MLPRegressor if problem.task == "regression" else neural_network.MLPClassifier
    X = _float64(problem)
    y = problem.y_train
    records = []
    for n_threads in threads:
        record = {"system": "sklearn", "mode": "MLP", "threads": n_threads, "device": "cpu", "epochs": epochs, "version": sklearn.__version__}
        if threadpoolctl is None:
            record["note"] = "threadpoolctl missing: BLAS threads not limited"
        repeat_seconds, epoch_seconds, trace, estimator = [], [], [], None
        limits = threadpoolctl.threadpool_limits(n_threads) if threadpoolctl else _NullContext()
        with limits, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # partial_fit convergence chatter
            for repeat in range(repeats):
                estimator = make(**params)
                extra = {} if problem.task == "regression" else {"classes": problem.classes}
                total = 0.0
                for epoch in range(epochs):
                    start = time.perf_counter()
                    estimator.partial_fit(X, y, **extra)
                    seconds = time.perf_counter() - start
                    total += seconds
                    if repeat == 0:
                        epoch_seconds.append(seconds)
                        trace.append([total, problem.mlp_objective(estimator.coefs_, estimator.intercepts_, config.activation)])
                repeat_seconds.append(total)
                progress(f"sklearn MLP, {n_threads} BLAS threads: {total:.3f} s for {epochs} epochs")
        record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds)
        records.append(_finish(record, problem, _mlp_score(problem, config.activation), (estimator.coefs_, estimator.intercepts_), trace))
    return records


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- Vowpal Wabbit ------------------------------------------------------------------------------------
VW_LOSSES = {"log_loss": "logistic", "hinge": "hinge", "squared_error": "squared"}


def write_vw_text(path, X, labels):
    """Write CSR rows as VW text lines ``label | j:v ...`` (features named by their column number)."""
    X = sp.csr_matrix(X)
    indptr, indices, data = X.indptr, X.indices, X.data
    with open(path, "w", encoding="ascii") as handle:
        for i in range(X.shape[0]):
            start, stop = indptr[i], indptr[i + 1]
            features = " ".join(f"{j}:{v:.9g}" for j, v in zip(indices[start:stop].tolist(), data[start:stop].tolist()))
            handle.write(f"{labels[i]:.9g} | {features}\n")


def _vw_bits(n_features):
    """Hash bits so that every feature number and VW's constant feature get their own weight slot."""
    bits = max(18, math.ceil(math.log2(n_features + 1)) + 1)
    while (11650396 & ((1 << bits) - 1)) < n_features:  # 11650396 is VW's hash of its 'Constant' feature
        bits += 1
    return bits


def vowpal_wabbit(problem, config, *, epochs, repeats, progress):
    """Vowpal Wabbit trained from its cache file for ``epochs`` passes; conversion and caching untimed."""
    vw = _optional("vowpalwabbit")
    if vw is None:
        return [skipped("vw", "vowpalwabbit is not installed (pip install vowpalwabbit)", "passes", 1)]
    if config.loss not in VW_LOSSES:
        return [skipped("vw", f"Vowpal Wabbit has no {config.loss!r} loss in this comparison", "passes", 1)]
    if problem.task == "multiclass":
        return [skipped("vw", "multiclass VW (--oaa) is not part of this comparison", "passes", 1)]
    if config.effective_penalty not in ("l2", "none"):
        return [skipped("vw", f"penalty {config.effective_penalty!r} is not compared with VW", "passes", 1)]
    labels = problem.y_train.astype(np.float64) if problem.task == "regression" else problem.signed_labels()
    bits = _vw_bits(problem.n_features)
    record = {"system": "vw", "mode": "passes", "threads": 1, "device": "cpu", "epochs": epochs, "version": getattr(vw, "__version__", "?")}
    with tempfile.TemporaryDirectory(prefix="hogwild-bench-vw-") as folder:
        text = os.path.join(folder, "train.vw")
        cache = os.path.join(folder, "train.cache")
        start = time.perf_counter()
        write_vw_text(text, problem.X_train, labels)
        common = f"-d {text} --cache_file {cache} --holdout_off --quiet -b {bits} --loss_function {VW_LOSSES[config.loss]}"
        if config.l2_strength:
            common += f" --l2 {config.l2_strength:.9g}"
        if not config.fit_intercept:
            common += " --noconstant"
        vw.Workspace(f"{common} --passes 1").finish()  # builds the cache, untimed
        record["prepare_seconds"] = time.perf_counter() - start
        repeat_seconds, workspace = [], None
        for repeat in range(repeats):
            if workspace is not None:
                workspace.finish()
            start = time.perf_counter()
            workspace = vw.Workspace(f"{common} --passes {epochs}")  # the driver trains inside the constructor
            repeat_seconds.append(time.perf_counter() - start)
            progress(f"vw: {repeat_seconds[-1]:.3f} s for {epochs} passes (repeat {repeat + 1}/{repeats})")
        coef, intercept, mismatch = _vw_parameters(workspace, problem, config.fit_intercept)
        workspace.finish()
    if mismatch > 1e-3:
        record["reason_objective"] = f"VW weights read back disagree with its predictions (relative error {mismatch:.1e})"
    record.update(repeat_seconds=repeat_seconds, epoch_seconds=None, trace_reason="VW runs all passes inside one driver call")
    return [_finish(record, problem, _linear_score(problem), (coef, intercept), None)]


def _vw_parameters(workspace, problem, fit_intercept, n_check=256):
    """(coef, intercept, relative mismatch) of a trained VW workspace, in the bench's feature numbering.

    VW applies L2 through a lazy global contraction of its stored weights (gd.cc), which ``get_weight`` does not
    include; the factor is recovered by least squares from VW's own predictions on the first training rows, and
    the relative mismatch left says whether weights and predictions agree.
    """
    mask = workspace.num_weights() - 1
    slots = [workspace.hash_feature(str(j), 0) & mask for j in range(problem.n_features)]
    coef = np.array([workspace.get_weight(int(slot)) for slot in slots], dtype=np.float64)
    intercept = workspace.get_weight(11650396 & mask) if fit_intercept else 0.0
    X = sp.csr_matrix(problem.X_train[:n_check])
    raw = X @ coef + intercept
    predicted = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        start, stop = X.indptr[i], X.indptr[i + 1]
        features = " ".join(f"{j}:{v:.9g}" for j, v in zip(X.indices[start:stop].tolist(), X.data[start:stop].tolist()))
        predicted[i] = workspace.predict(workspace.example(f"| {features}"))
    scale = float(predicted @ raw / (raw @ raw)) if raw @ raw > 0 else 1.0
    mismatch = float(np.linalg.norm(predicted - scale * raw) / max(np.linalg.norm(predicted), 1e-12))
    return scale * coef, scale * intercept, mismatch


# --- LIBLINEAR ----------------------------------------------------------------------------------------
def liblinear_solver(config, task):
    """(solver number, C scale) for ``config``'s loss and penalty, or (None, reason) when LIBLINEAR has none."""
    penalty = config.effective_penalty
    if penalty == "l2":
        solvers = {"log_loss": 0, "squared_hinge": 2, "hinge": 3, "squared_error": 11}
        if config.loss in solvers:
            # C * sum(loss) + |w|^2/2 is n*C times our mean loss + l2/2 |w|^2 when C = 1/(l2 n);
            # LIBLINEAR's squared error has no 1/2, hence the extra half.
            return solvers[config.loss], (0.5 if config.loss == "squared_error" else 1.0) / config.l2_strength
    if penalty == "l1":
        solvers = {"log_loss": 6, "squared_hinge": 5}
        if config.loss in solvers:
            return solvers[config.loss], 1.0 / config.l1_strength
    return None, f"LIBLINEAR has no solver for loss {config.loss!r} with penalty {penalty!r}"


def liblinear(problem, config, *, repeats, progress):
    """LIBLINEAR solved to its default tolerance; only ``train()`` is timed."""
    util = _optional("liblinear.liblinearutil")
    if util is None:
        return [skipped("liblinear", "liblinear-official is not installed (pip install liblinear-official)", "solver", 1)]
    solver, scale = liblinear_solver(config, problem.task)
    if solver is None:
        return [skipped("liblinear", scale, "solver", 1)]
    C = scale / problem.n_train
    bias = 1.0 if config.fit_intercept else -1.0
    X = _float64(problem)
    y = problem.y_train.astype(np.float64)
    extra = " -p 0" if solver == 11 else ""
    if config.fit_intercept:
        extra += " -B 1"  # the bias goes in through the parameter: train() re-sets the problem's bias from it
    problem_ll = util.problem(y, X, bias)
    parameter = util.parameter(f"-s {solver} -c {C:.17g} -q{extra}")
    repeat_seconds, fitted = [], None
    for repeat in range(repeats):
        start = time.perf_counter()
        fitted = util.train(problem_ll, parameter)
        repeat_seconds.append(time.perf_counter() - start)
        progress(f"liblinear -s {solver}: {repeat_seconds[-1]:.3f} s (repeat {repeat + 1}/{repeats})")
    coef, intercept = liblinear_parameters(fitted, problem)
    record = {
        "system": "liblinear", "mode": f"s{solver}", "threads": 1, "device": "cpu", "epochs": None,
        "repeat_seconds": repeat_seconds, "epoch_seconds": None, "seconds_total_is_solve": True,
        "trace_reason": "LIBLINEAR solves to its own tolerance, not in epochs",
    }
    return [_finish(record, problem, _linear_score(problem), (coef, intercept), None)]


def liblinear_parameters(fitted, problem):
    """(coef, intercept) in the bench's convention from a LIBLINEAR model (its classes ordered as first seen)."""
    n_features = fitted.get_nr_feature()
    has_bias = fitted.bias >= 0
    if problem.task == "regression" or fitted.get_nr_class() == 2:
        n_columns = 1
    else:
        n_columns = fitted.get_nr_class()
    flat = np.ctypeslib.as_array(fitted.w, shape=((n_features + has_bias) * n_columns,)).astype(np.float64)
    w = flat.reshape(n_features + has_bias, n_columns)
    intercept = w[-1] * fitted.bias if has_bias else np.zeros(n_columns)
    w = w[:n_features]
    if n_features < problem.n_features:  # LIBLINEAR drops trailing all-zero columns
        w = np.vstack([w, np.zeros((problem.n_features - n_features, n_columns))])
    if problem.task == "regression":
        return w[:, 0], float(intercept[0])
    labels = np.asarray(fitted.get_labels(), dtype=problem.classes.dtype)
    if n_columns == 1:
        # the decision value is positive for LIBLINEAR's first label; the bench's positive class is the larger one
        sign = 1.0 if labels[0] == problem.classes[-1] else -1.0
        return sign * w[:, 0], sign * float(intercept[0])
    order = [int(np.flatnonzero(labels == c)[0]) for c in problem.classes]
    return w[:, order], intercept[order]


# --- PyTorch ------------------------------------------------------------------------------------------
def _torch_model(torch, n_inputs, config, n_outputs):
    """An MLP with the config's layers and activation; its first layer takes dense or sparse CSR input."""
    torch.manual_seed(config.seed)
    return _torch_mlp_class()([n_inputs, *config.hidden, n_outputs], config.activation)


def _torch_mlp_class():
    """The torch module class, defined on first use so that importing this module never imports torch."""
    cached = globals().get("_TorchMLPClass")
    if cached is not None:
        return cached
    import torch

    class TorchMLP(torch.nn.Module):
        def __init__(self, sizes, activation):
            super().__init__()
            self.activation = activation
            self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

        def forward(self, x):
            act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[self.activation]
            first = self.layers[0]
            h = (x @ first.weight.t()) + first.bias if x.layout == torch.sparse_csr else first(x)
            for layer in self.layers[1:]:
                h = layer(act(h))
            return h

    # pickling (the Hogwild processes) finds the class by this module-level name, via __getattr__ below
    TorchMLP.__qualname__ = TorchMLP.__name__ = "_TorchMLPClass"
    TorchMLP.__module__ = __name__
    globals()["_TorchMLPClass"] = TorchMLP
    return TorchMLP


def __getattr__(name):
    if name == "_TorchMLPClass":
        return _torch_mlp_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _torch_optimizer(torch, model, config):
    groups = [
        {"params": [layer.weight for layer in model.layers], "weight_decay": config.l2},
        {"params": [layer.bias for layer in model.layers], "weight_decay": 0.0},
    ]
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=(config.beta1, config.beta2))
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=config.lr, alpha=config.beta2)
    momentum = config.momentum if config.optimizer == "momentum" else 0.0
    return torch.optim.SGD(groups, lr=config.lr, momentum=momentum)


def _torch_loss(torch, task):
    if task == "regression":
        return lambda out, target: 0.5 * torch.nn.functional.mse_loss(out[:, 0], target)
    if task == "binary":
        return lambda out, target: torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], target)
    return torch.nn.functional.cross_entropy


def _torch_targets(torch, problem):
    if problem.task == "regression":
        return torch.from_numpy(problem.y_train.astype(np.float32))
    if problem.task == "binary":
        return torch.from_numpy((problem.signed_labels() > 0).astype(np.float32))
    return torch.from_numpy(problem.label_index(problem.y_train).astype(np.int64))


def _torch_batch(torch, X, rows):
    """Rows of X as a torch tensor: a gather for dense input, a CSR tensor for sparse input."""
    if isinstance(X, tuple):  # (indptr, indices, data, n_features): numpy views of a CSR matrix
        indptr, indices, data, n_features = X
        # The width must be given: inferred from the largest index, a set whose last columns are all zero
        # in the training rows (news20) would not match the model's first layer.
        part = sp.csr_matrix((data, indices, indptr), shape=(indptr.shape[0] - 1, n_features))[rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.sparse_csr_tensor(
                torch.from_numpy(part.indptr.astype(np.int64)),
                torch.from_numpy(part.indices.astype(np.int64)),
                torch.from_numpy(part.data),
                size=part.shape,
                check_invariants=False,
            )
    return X[torch.from_numpy(rows)]


def _torch_data(problem):
    """The training rows as float32 the way `_torch_batch` reads them (shares memory where dtypes allow)."""
    X = problem.X_train
    if sp.issparse(X):
        X = X.tocsr()
        data = X.data if X.dtype == np.float32 else X.data.astype(np.float32)
        return (X.indptr, X.indices, data, X.shape[1]), X.shape[1]
    import torch

    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), X.shape[1]


def _torch_train_rows(torch, model, optimizer, loss_fn, X, targets, rows, batch_size):
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(_torch_batch(torch, X, batch)), targets[torch.from_numpy(batch)])
        loss.backward()
        optimizer.step()


def _torch_parameters(model):
    weights = [layer.weight.detach().numpy().T.astype(np.float64) for layer in model.layers]
    biases = [layer.bias.detach().numpy().astype(np.float64) for layer in model.layers]
    return weights, biases


def _n_outputs(problem):
    return 1 if problem.task in ("binary", "regression") else len(problem.classes)


def torch_mlp(problem, config, *, threads, epochs, repeats, progress):
    """PyTorch CPU: minibatch training with T intra-op threads, and its Hogwild recipe with T processes."""
    torch = _optional("torch")
    if torch is None:
        return [skipped("torch", "PyTorch is not installed (pip install torch)", "minibatch", None)]
    records = []
    X, n_inputs = _torch_data(problem)
    targets = _torch_targets(torch, problem)
    loss_fn = _torch_loss(torch, problem.task)
    score = _mlp_score(problem, config.activation)
    saved_threads = torch.get_num_threads()
    try:
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            record = {"system": "torch", "mode": "minibatch", "threads": n_threads, "device": "cpu", "epochs": epochs, "version": torch.__version__}
            repeat_seconds, epoch_seconds, trace, model = [], [], [], None
            warm = _torch_model(torch, n_inputs, config, _n_outputs(problem))
            _torch_train_rows(torch, warm, _torch_optimizer(torch, warm, config), loss_fn, X, targets,
                              np.arange(min(problem.n_train, 4 * config.batch_size)), config.batch_size)  # untimed warm-up
            for repeat in range(repeats):
                model = _torch_model(torch, n_inputs, config, _n_outputs(problem))
                optimizer = _torch_optimizer(torch, model, config)
                rng = np.random.default_rng(config.seed)
                total = 0.0
                for epoch in range(epochs):
                    rows = rng.permutation(problem.n_train) if config.shuffle else np.arange(problem.n_train)
                    start = time.perf_counter()
                    _torch_train_rows(torch, model, optimizer, loss_fn, X, targets, rows, config.batch_size)
                    seconds = time.perf_counter() - start
                    total += seconds
                    if repeat == 0:
                        epoch_seconds.append(seconds)
                        trace.append([total, problem.mlp_objective(*_torch_parameters(model), config.activation)])
                repeat_seconds.append(total)
                progress(f"torch minibatch, {n_threads} threads: {total:.3f} s for {epochs} epochs")
            record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds)
            records.append(_finish(record, problem, score, _torch_parameters(model), trace))
    finally:
        torch.set_num_threads(saved_threads)
    for n_threads in threads:
        records.append(_torch_hogwild(torch, problem, config, X, targets, n_threads, epochs, repeats, progress))
    return records


def _torch_hogwild_worker(worker, n_workers, model, config, X, targets, task, epochs, go, done):
    """One process of PyTorch's Hogwild recipe: its own optimizer and shard, the shared model, one thread."""
    import torch

    torch.set_num_threads(1)
    optimizer = _torch_optimizer(torch, model, config)
    loss_fn = _torch_loss(torch, task)
    n_rows = len(targets)
    shard = np.arange(worker * n_rows // n_workers, (worker + 1) * n_rows // n_workers)
    rng = np.random.default_rng([config.seed, worker])
    with torch.no_grad():  # first-call overheads (allocator, kernels) outside the timed epochs
        model(_torch_batch(torch, X, shard[: config.batch_size]))
    done.put(worker)  # ready: process start-up and imports are not part of any epoch
    for epoch in range(epochs):
        rows = rng.permutation(shard) if config.shuffle else shard
        go.get()  # the main process starts the clock, then hands out one token per worker
        _torch_train_rows(torch, model, optimizer, loss_fn, X, targets, rows, config.batch_size)
        done.put(worker)  # ... and stops it when every worker has reported


def _torch_hogwild(torch, problem, config, X, targets, n_threads, epochs, repeats, progress):
    import torch.multiprocessing as mp

    record = {"system": "torch", "mode": "hogwild", "threads": n_threads, "device": "cpu", "epochs": epochs, "version": torch.__version__}
    context = mp.get_context("spawn")  # fork after torch has started its thread pools can deadlock
    if isinstance(X, tuple):
        # CSR arrays go to shared memory; the trailing feature count stays a plain int.
        shared_X = tuple(torch.from_numpy(np.ascontiguousarray(part)).share_memory_() if isinstance(part, np.ndarray)
                         else part for part in X)
    else:
        shared_X = X.share_memory_()
    shared_targets = targets.share_memory_()
    repeat_seconds, epoch_seconds, trace, model = [], [], [], None
    for repeat in range(repeats):
        model = _torch_model(torch, problem.n_features, config, _n_outputs(problem))
        model.share_memory()
        go, done = context.Queue(), context.Queue()
        worker_X = _SharedArrays(shared_X) if isinstance(shared_X, tuple) else shared_X
        processes = [
            context.Process(
                target=_torch_hogwild_worker,
                args=(w, n_threads, model, config, worker_X, shared_targets, problem.task, epochs, go, done),
            )
            for w in range(n_threads)
        ]
        for process in processes:
            process.start()
        total = 0.0
        try:
            _wait_for_workers(done, processes)
            for epoch in range(epochs):
                start = time.perf_counter()
                for _ in processes:
                    go.put(epoch)
                _wait_for_workers(done, processes)
                seconds = time.perf_counter() - start
                total += seconds
                if repeat == 0:
                    epoch_seconds.append(seconds)
                    trace.append([total, problem.mlp_objective(*_torch_parameters(model), config.activation)])
        except RuntimeError as exc:  # a worker died
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                process.join()
            return skipped("torch", f"the Hogwild worker processes failed: {exc}", "hogwild", n_threads)
        for process in processes:
            process.join()
        repeat_seconds.append(total)
        progress(f"torch hogwild, {n_threads} processes: {total:.3f} s for {epochs} epochs")
    record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds)
    return _finish(record, problem, _mlp_score(problem, config.activation), _torch_parameters(model), trace)


def _wait_for_workers(done, processes):
    """Block until every worker has reported one finished epoch; raise RuntimeError if one of them died."""
    import queue

    pending = len(processes)
    while pending:
        try:
            done.get(timeout=0.5)
            pending -= 1
        except queue.Empty:
            dead = [p for p in processes if not p.is_alive()]
            if dead:
                raise RuntimeError(f"worker process exited with code {dead[0].exitcode}") from None


class _SharedArrays(tuple):
    """CSR parts as shared-memory torch tensors that unpickle in a worker as zero-copy NumPy views."""

    def __new__(cls, tensors):
        return super().__new__(cls, tensors)

    def __reduce__(self):
        return (_numpy_views, (tuple(self),))


def _numpy_views(tensors):
    return tuple(tensor.numpy() if hasattr(tensor, "numpy") else tensor for tensor in tensors)
