"""The PyTorch peer of ``hogwild bench`` (MLPs only): the same network trained the ways PyTorch users train it.

- ``minibatch`` (CPU): plain minibatch training with ``torch.set_num_threads(T)``, one record per thread count.
- ``hogwild`` (CPU): PyTorch's own Hogwild recipe, ``torch.multiprocessing`` with ``model.share_memory()`` and T
  processes (each one thread, its own optimizer, its own shard), held between epochs (queues) so that each
  epoch is timed and the shared model is scored while they wait. Process start-up is excluded.
- ``minibatch`` on the GPU (when the study's devices include cuda and torch sees a CUDA device): data and weights
  resident on the device, each epoch synchronized at its end, after one untimed warm-up epoch (cuBLAS and the
  allocator); the weights are copied to the host between epochs, untimed, to be scored.

Records follow `hogwild.bench.peers` (same keys, the bench's objective and test accuracy after each epoch).
Importing this module never imports torch.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.sparse as sp

from .records import finish_record, mlp_score, optional_module, skipped, trace_point


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
        return torch.optim.Adam(groups, lr=config.effective_lr, betas=(config.beta1, config.beta2))
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=config.effective_lr, alpha=config.beta2)
    momentum = config.momentum if config.optimizer == "momentum" else 0.0
    return torch.optim.SGD(groups, lr=config.effective_lr, momentum=momentum)


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
    weights = [layer.weight.detach().cpu().numpy().T.astype(np.float64) for layer in model.layers]
    biases = [layer.bias.detach().cpu().numpy().astype(np.float64) for layer in model.layers]
    return weights, biases


def _n_outputs(problem):
    return 1 if problem.task in ("binary", "regression") else len(problem.classes)


def torch_mlp(problem, config, *, threads, epochs, repeats, progress):
    """PyTorch CPU: minibatch training with T intra-op threads, and its Hogwild recipe with T processes."""
    torch = optional_module("torch")
    if torch is None:
        return [skipped("torch", "PyTorch is not installed (pip install torch)", "minibatch", None)]
    records = []
    X, n_inputs = _torch_data(problem)
    targets = _torch_targets(torch, problem)
    loss_fn = _torch_loss(torch, problem.task)
    score = mlp_score(problem, config.activation)
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
                        trace.append(trace_point(total, score, _torch_parameters(model)))
                repeat_seconds.append(total)
                progress(f"torch minibatch, {n_threads} threads: {total:.3f} s for {epochs} epochs")
            record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds)
            records.append(finish_record(record, problem, score, _torch_parameters(model), trace))
    finally:
        torch.set_num_threads(saved_threads)
    for n_threads in threads:
        records.append(_torch_hogwild(torch, problem, config, X, targets, n_threads, epochs, repeats, progress))
    return records


def torch_gpu_minibatch(problem, config, *, epochs, repeats, progress):
    """PyTorch minibatch training on the GPU, data and weights resident there; one record with device "cuda"."""
    mode = "minibatch"
    torch = optional_module("torch")
    if torch is None:
        return [skipped("torch", "PyTorch is not installed (pip install torch)", mode, None, "cuda")]
    if not torch.cuda.is_available():
        return [skipped("torch", "this PyTorch build sees no CUDA device", mode, None, "cuda")]
    if sp.issparse(problem.X_train):
        return [skipped("torch", "the GPU PyTorch peer runs dense input only", mode, None, "cuda")]
    device = torch.device("cuda")
    X = torch.as_tensor(np.ascontiguousarray(problem.X_train, dtype=np.float32), device=device)
    targets = _torch_targets(torch, problem).to(device)
    loss_fn = _torch_loss(torch, problem.task)
    score = mlp_score(problem, config.activation)
    n_rows, batch_size = problem.n_train, config.batch_size
    record = {"system": "torch", "mode": mode, "threads": None, "device": "cuda", "epochs": epochs,
              "version": torch.__version__, "gpu": torch.cuda.get_device_name(0)}
    warm = _torch_model(torch, problem.n_features, config, _n_outputs(problem)).to(device)
    _device_rows(warm, _torch_optimizer(torch, warm, config), loss_fn, X, targets,
                 torch.arange(min(n_rows, 4 * batch_size), device=device), batch_size)  # cuBLAS, allocator: untimed
    torch.cuda.synchronize()
    repeat_seconds, epoch_seconds, trace, model = [], [], [], None
    for repeat in range(repeats):
        model = _torch_model(torch, problem.n_features, config, _n_outputs(problem)).to(device)
        optimizer = _torch_optimizer(torch, model, config)
        rng = np.random.default_rng(config.seed)
        total = 0.0
        for epoch in range(epochs):
            rows = rng.permutation(n_rows) if config.shuffle else np.arange(n_rows)
            rows = torch.from_numpy(rows).to(device)
            torch.cuda.synchronize()
            start = time.perf_counter()
            _device_rows(model, optimizer, loss_fn, X, targets, rows, batch_size)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            total += seconds
            if repeat == 0:
                epoch_seconds.append(seconds)
                trace.append(trace_point(total, score, _torch_parameters(model)))
        repeat_seconds.append(total)
        progress(f"torch minibatch on the GPU: {total:.3f} s for {epochs} epochs")
    record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds)
    return [finish_record(record, problem, score, _torch_parameters(model), trace)]


def _device_rows(model, optimizer, loss_fn, X, targets, rows, batch_size):
    """One pass over ``rows`` (a tensor on X's device) in mini-batches: no host round trip inside."""
    for start in range(0, rows.shape[0], batch_size):
        batch = rows[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(X[batch]), targets[batch]).backward()
        optimizer.step()


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
                    trace.append(trace_point(total, mlp_score(problem, config.activation), _torch_parameters(model)))
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
    return finish_record(record, problem, mlp_score(problem, config.activation), _torch_parameters(model), trace)


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
