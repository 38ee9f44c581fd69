"""The small integer codes that kernels compare, and the name -> code tables Python builds them from.

Kernels take plain ints for their variants (a loss, a schedule, an update mode) and compare them with the named
constants below, never with bare integers. Numba freezes module globals at compile time, so ``loss ==
LOSS_HINGE`` costs what ``loss == 1`` did; the CPU kernels (`hogwild.kernels.linear`, `hogwild.kernels.mlp`),
their CUDA twins and the shared arithmetic (`hogwild.kernels.arithmetic`) all read this one module, so a code
means the same thing on both devices. Python turns a user's name into a code through the ``*_CODES`` tables
(scikit-learn's ``loss_functions`` table and ``#define OPTIMAL 2``, as one module).

The values are part of nothing outside a process (checkpoints and models store names), but they are kept
stable anyway so that two kernels compiled at different times agree.
"""

# --- linear models ------------------------------------------------------------------------------------
# Losses of one score (binary with y = -1/+1, or regression): `hogwild.kernels.arithmetic.loss_dloss`.
LOSS_LOG_LOSS = 0
LOSS_HINGE = 1
LOSS_SQUARED_HINGE = 2
LOSS_MODIFIED_HUBER = 3
LOSS_PERCEPTRON = 4
LOSS_SQUARED_ERROR = 5
LOSS_HUBER = 6
LOSS_EPSILON_INSENSITIVE = 7
LOSS_CODES = {
    "log_loss": LOSS_LOG_LOSS,
    "hinge": LOSS_HINGE,
    "squared_hinge": LOSS_SQUARED_HINGE,
    "modified_huber": LOSS_MODIFIED_HUBER,
    "perceptron": LOSS_PERCEPTRON,
    "squared_error": LOSS_SQUARED_ERROR,
    "huber": LOSS_HUBER,
    "epsilon_insensitive": LOSS_EPSILON_INSENSITIVE,
}

# How the K scores of a row meet its target: one score (binary or regression), K one-vs-rest binary losses
# (the target is a class index), or one softmax cross-entropy over K scores.
MULTICLASS_BINARY = 0
MULTICLASS_OVR = 1
MULTICLASS_SOFTMAX = 2
MULTICLASS_CODES = {"binary": MULTICLASS_BINARY, "ovr": MULTICLASS_OVR, "softmax": MULTICLASS_SOFTMAX}

# Step-size schedules: `hogwild.kernels.arithmetic.eta_at` gives the global ones; the per-coordinate ones
# (adagrad, normalized, ftrl) step each weight by its own state (`adagrad_step`, `normalized_step`,
# `ftrl_step`). ADAPTIVE is scikit-learn's "adaptive": a constant step inside an epoch, divided by 5 by the
# epoch loop when the loss stalls (`hogwild.loop.EarlyStopping`).
SCHEDULE_CONSTANT = 0
SCHEDULE_DECAY = 1
SCHEDULE_INVSCALING = 2
SCHEDULE_OPTIMAL = 3
SCHEDULE_ADAGRAD = 4
SCHEDULE_ADAPTIVE = 5
SCHEDULE_NORMALIZED = 6
SCHEDULE_FTRL = 7
SCHEDULE_CODES = {
    "constant": SCHEDULE_CONSTANT,
    "decay": SCHEDULE_DECAY,
    "invscaling": SCHEDULE_INVSCALING,
    "optimal": SCHEDULE_OPTIMAL,
    "adagrad": SCHEDULE_ADAGRAD,
    "adaptive": SCHEDULE_ADAPTIVE,
    "normalized": SCHEDULE_NORMALIZED,
    "ftrl": SCHEDULE_FTRL,
}

# CPU ``sync`` mode: how the workers' mini-batch gradients are combined (`hogwild.kernels.linear_sync.sync_batches`).
AGGREGATE_MEAN = 0
AGGREGATE_WEIGHTED = 1
AGGREGATE_CODES = {"mean": AGGREGATE_MEAN, "weighted": AGGREGATE_WEIGHTED}

# --- CUDA update modes (`hogwild.kernels.gpu_linear`, `hogwild.kernels.gpu_mlp`) ------------------------
# ASYNC: plain racy read-modify-writes (Hogwild!); ATOMIC: atomic adds on every weight; ACCUMULATE: the first
# half of ``sync`` (atomically summed gradients, applied by a second kernel).
UPDATE_ASYNC = 0
UPDATE_ATOMIC = 1
UPDATE_ACCUMULATE = 2
UPDATE_CODES = {"async": UPDATE_ASYNC, "atomic": UPDATE_ATOMIC, "sync": UPDATE_ACCUMULATE}

# --- MLPs (`hogwild.kernels.mlp`, `hogwild.kernels.gpu_mlp`) ------------------------------------------
ACTIVATION_RELU = 0
ACTIVATION_TANH = 1
ACTIVATION_SIGMOID = 2
ACTIVATION_CODES = {"relu": ACTIVATION_RELU, "tanh": ACTIVATION_TANH, "sigmoid": ACTIVATION_SIGMOID}

# The output layer and its loss: softmax cross-entropy (K > 2 classes), logistic loss on one unit (two
# classes), squared error (regression).
OUTPUT_SOFTMAX = 0
OUTPUT_LOGISTIC = 1
OUTPUT_IDENTITY = 2
OUTPUT_CODES = {"softmax": OUTPUT_SOFTMAX, "logistic": OUTPUT_LOGISTIC, "identity": OUTPUT_IDENTITY}

OPTIMIZER_SGD = 0
OPTIMIZER_MOMENTUM = 1
OPTIMIZER_ADAM = 2
OPTIMIZER_RMSPROP = 3
OPTIMIZER_CODES = {
    "sgd": OPTIMIZER_SGD,
    "momentum": OPTIMIZER_MOMENTUM,
    "adam": OPTIMIZER_ADAM,
    "rmsprop": OPTIMIZER_RMSPROP,
}
