"""Peer systems for ``hogwild bench``: each runner trains on the bench's shared split and returns run records.

Every runner takes ``(problem, config, *, threads, epochs, repeats, progress)`` and returns a list of records
with ``system, mode, threads, device, epochs, repeat_seconds`` (training seconds of each repeat),
``epoch_seconds`` (per epoch, first repeat), ``trace`` (``[cumulative seconds, objective, test accuracy]`` after
each epoch, or None with ``trace_reason``), ``train_loss`` (the bench's objective of the final parameters,
computed by `hogwild.bench.problem.BenchProblem`, never the peer's own report) and the test metrics. A peer whose
package is missing, or that cannot train this loss or model, returns one record with ``skipped: True`` and a
``reason``.

How each peer is run, and what its time covers:

- **sklearn** (``SGDClassifier``/``SGDRegressor``): same loss, penalty (``alpha``/``l1_ratio`` from l2/l1) and
  epochs; ``schedule`` constant/optimal/invscaling map to its ``learning_rate`` with ``eta0=lr``; decay and
  adagrad have no counterpart and run as ``optimal`` (noted in the record). Epochs are a ``partial_fit`` loop
  (one pass per call, the step counter carries over, exactly as ``fit(max_iter=epochs, tol=None)``); each call
  is timed, the objective and test accuracy are evaluated between calls, untimed. It gets float64 data (its
  kernels convert anything else on every call). Single-threaded: one record at 1 thread.
  For MLPs, ``MLPClassifier``/``MLPRegressor`` with the same layers, activation, optimizer, batch size and
  learning rate, ``alpha = l2 * batch_size`` (scikit-learn divides the penalty by the batch size); BLAS threads
  are limited to each thread count with threadpoolctl.
- **vw** (Vowpal Wabbit, ``vowpalwabbit``): the training CSR is written as VW text in a temporary folder, then a
  one-pass untimed run builds the cache; the timed run trains ``epochs`` passes from that cache
  (``--passes --cache_file --holdout_off``), so conversion and parsing text are excluded. Same loss
  (logistic/hinge/squared), ``--l2`` = l2, VW's own default step (``-l 0.5``, adaptive, normalized, invariant
  updates: its defaults are what its users run). Weights are read back through VW's hash of each feature
  number. VW trains all passes inside one driver call, so its per-pass trace comes from one more, untimed run
  that saves the model after every pass (``--save_per_pass``); pass k is placed at k/epochs of the timed run's
  seconds (passes from the cache cost the same), which the record states in ``trace_times``.
- **liblinear** (``liblinear-official``): the accuracy reference. ``C = 1/(l2 * n)`` (``1/(2 l2 n)`` for
  squared error) makes its objective a multiple of ours; ``-B 1`` adds a bias (LIBLINEAR regularizes it, a small
  difference). Only ``train()`` is timed, not building its problem. It runs to its own tolerance, not in
  epochs: ``seconds_total`` is the solve, and time-to-target is that whole solve when it gets there.
- **torch** (PyTorch, MLPs only): see `hogwild.bench.torch_peer` (CPU minibatch, its Hogwild recipe, and
  minibatch on the GPU when the study's devices include cuda).
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp

from .records import finish_record, linear_score, mlp_score, optional_module, skipped, trace_point

PEERS = ("sklearn", "vw", "liblinear", "torch")


def run_peer(name, problem, config, *, threads=(1,), epochs=5, repeats=1, devices=("cpu",), progress=None):
    """Records of peer ``name`` on ``problem``; a missing package or unsupported setting gives a skipped record.

    Every peer runs on the CPU; ``devices`` including "cuda" adds PyTorch's GPU run (the others have none).
    """
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
        from .torch_peer import torch_gpu_minibatch, torch_mlp

        records = torch_mlp(problem, config, threads=threads, epochs=epochs, repeats=repeats, progress=progress)
        if "cuda" in devices:
            records += torch_gpu_minibatch(problem, config, epochs=epochs, repeats=repeats, progress=progress)
        return records
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
        "eta0": config.effective_lr,
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
    linear_model = optional_module("sklearn.linear_model")
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
                trace.append(trace_point(total, linear_score(problem), _sklearn_linear_params(estimator, problem)))
        repeat_seconds.append(total)
        progress(f"sklearn SGD: {total:.3f} s for {epochs} epochs (repeat {repeat + 1}/{repeats})")
    record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds)
    coef, intercept = _sklearn_linear_params(estimator, problem)
    return [finish_record(record, problem, linear_score(problem), (coef, intercept), trace)]


def sklearn_mlp(problem, config, *, threads, epochs, repeats, progress):
    """scikit-learn's MLPClassifier/MLPRegressor, one timed ``partial_fit`` (one epoch) per epoch, per thread count."""
    neural_network = optional_module("sklearn.neural_network")
    threadpoolctl = optional_module("threadpoolctl")
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
        "learning_rate_init": config.effective_lr,
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
                        trace.append(trace_point(total, mlp_score(problem, config.activation),
                                                 (estimator.coefs_, estimator.intercepts_)))
                repeat_seconds.append(total)
                progress(f"sklearn MLP, {n_threads} BLAS threads: {total:.3f} s for {epochs} epochs")
        record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds)
        records.append(finish_record(record, problem, mlp_score(problem, config.activation), (estimator.coefs_, estimator.intercepts_), trace))
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
    vw = optional_module("vowpalwabbit")
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
        trace = _vw_pass_trace(vw, common, folder, problem, config, epochs, statistics.median(repeat_seconds) / epochs)
    if mismatch > 1e-3:
        record["reason_objective"] = f"VW weights read back disagree with its predictions (relative error {mismatch:.1e})"
    record.update(repeat_seconds=repeat_seconds, epoch_seconds=None,
                  trace_times="VW trains every pass in one call: pass k is placed at k/epochs of the timed run")
    return [finish_record(record, problem, linear_score(problem), (coef, intercept), trace)]


def _vw_pass_trace(vw, common, folder, problem, config, epochs, seconds_per_pass):
    """``[seconds, objective, test accuracy]`` after each pass, from an untimed run that saves every pass's model."""
    model = os.path.join(folder, "model")
    vw.Workspace(f"{common} --passes {epochs} -f {model} --save_per_pass").finish()
    trace = []
    for k in range(1, epochs + 1):
        path = f"{model}.{k}" if os.path.exists(f"{model}.{k}") else model  # the last pass may only be the final file
        loaded = vw.Workspace(f"-i {path} -t --quiet")
        coef, intercept, _ = _vw_parameters(loaded, problem, config.fit_intercept)
        loaded.finish()
        trace.append(trace_point(k * seconds_per_pass, linear_score(problem), (coef, intercept)))
    return trace


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
    util = optional_module("liblinear.liblinearutil")
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
    return [finish_record(record, problem, linear_score(problem), (coef, intercept), None)]


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
