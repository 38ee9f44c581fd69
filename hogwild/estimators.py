"""scikit-learn-compatible estimators over `hogwild.train`: `HogwildClassifier` and `HogwildRegressor`.

Parameter names are scikit-learn's SGD names where one exists; they are translated into one `TrainConfig`
in `fit` (never validated in ``__init__``/``set_params``, as scikit-learn requires):

* ``penalty``/``alpha``/``l1_ratio`` -> ``l2``/``l1``: l2 -> l2=alpha; l1 -> l1=alpha; elasticnet ->
  l2=alpha*(1-l1_ratio), l1=alpha*l1_ratio; None/"none" -> no penalty.
* ``learning_rate`` -> ``schedule`` (scikit-learn's constant, optimal, invscaling and adaptive, plus hogwild's
  decay, adagrad, normalized and ftrl; the default "auto" is normalized: features need no scaling, see
  `TrainConfig.effective_schedule`); ``eta0`` -> ``lr`` (None: the schedule's default rate);
  ``max_iter`` -> ``epochs``; ``early_stopping`` -> ``validation_fraction`` holdout (else ``tol`` watches the
  training loss, like scikit-learn's SGD).
* ``random_state`` -> ``seed``. An integer makes fits reproducible: the default ``mode="auto"`` then trains
  serially (umap-learn's rule: the racy parallel path is not used when a seed is set). None means seed 0 for
  the row order, and ``mode="auto"`` may pick lock-free threads whose races differ from fit to fit.
  ``__sklearn_tags__`` says ``non_deterministic`` exactly when a fixed seed does not fix the result
  (``mode`` async or locked on several threads; ``average`` gives the same model for a seed and a thread count).
* ``average``: scikit-learn's: True (or N) makes the model the average of the SGD iterates from the first
  (N-th) row on (ASGD), in every mode. Per-worker replica averaging (local SGD) is ``mode="average"``.
* ``mode``, ``n_threads``, ``batch_size``, ``dtype``, ``device``, ``multiclass``: hogwild's own.
* ``cluster``, ``nodes``, ``cross_node``, ``sync_every`` (linear estimators): train on a Ray cluster, as
  ``hogwild train --cluster`` does (`hogwild.cluster`; needs ``pip install 'hogwild[ray]'``).

scikit-learn is not imported here except inside ``__sklearn_tags__``, which only scikit-learn itself calls.
"""

from __future__ import annotations

import inspect
import sys
import warnings

import numpy as np
import scipy.sparse as sp

from ._inputs import CSR, as_csr, load_xy
from .config import TrainConfig
from .errors import ConfigError
from .models import PROBA_LOSSES, LinearModel

_DEFAULTS = TrainConfig()


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before `fit` (scikit-learn's contract: both a ValueError and an AttributeError)."""


def _not_fitted(name):
    """A `NotFittedError`; also scikit-learn's NotFittedError when scikit-learn is already loaded.

    scikit-learn's checks demand its own exception class; importing scikit-learn here would make it a core
    dependency, so we only borrow the class when the caller has loaded scikit-learn anyway.
    """
    message = f"This {name} instance is not fitted yet; call fit first."
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    if sklearn_exceptions is None:
        return NotFittedError(message)
    both = type("NotFittedError", (NotFittedError, sklearn_exceptions.NotFittedError), {})
    return both(message)


class DataConversionWarning(UserWarning):
    """A column-vector y was flattened (the warning scikit-learn users expect, by name)."""


def _data_conversion_warning():
    """`DataConversionWarning`, or a subclass of it and scikit-learn's when scikit-learn is loaded (its checks
    and users filter on scikit-learn's class; importing scikit-learn here would make it a core dependency)."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    if sklearn_exceptions is None:
        return DataConversionWarning
    both = _BOTH_WARNINGS.get(sklearn_exceptions.DataConversionWarning)
    if both is None:
        both = type("DataConversionWarning", (DataConversionWarning, sklearn_exceptions.DataConversionWarning), {})
        _BOTH_WARNINGS[sklearn_exceptions.DataConversionWarning] = both
    return both


_BOTH_WARNINGS = {}


def _warn_column_vector(stacklevel):
    warnings.warn("A column-vector y was passed when a 1d array was expected; it was flattened",
                  _data_conversion_warning(), stacklevel=stacklevel + 1)


def _resolved_mode(mode, random_state):
    """``mode="auto"`` with an integer ``random_state`` trains serially, so that a seeded fit is reproducible."""
    return "serial" if mode == "auto" and random_state is not None else mode


def _racy(mode, n_threads):
    """Whether a fixed seed leaves the result to the threads' races: lock-free or locked updates of shared
    weights (async, locked) on more than one thread. ``average``'s workers each write their own replica, merged
    in a fixed order, so a seed and a thread count fix its result. ``auto`` with a seed runs serially."""
    return mode in ("async", "locked") and n_threads != 1


def _average_rows(average):
    """scikit-learn's ``average``: False/0 -> 0 (off), True -> 1, N -> N."""
    if isinstance(average, (bool, np.bool_)):
        return int(bool(average))
    if isinstance(average, (int, np.integer)) and average >= 0:
        return int(average)
    raise ConfigError("average", f"average must be a bool or a non-negative integer; got {average!r}")


class _EstimatorParams:
    """scikit-learn's parameter protocol (``get_params``/``set_params``/``repr``), read off ``__init__``."""

    @classmethod
    def _param_names(cls):
        signature = inspect.signature(cls.__init__)
        return sorted(name for name in signature.parameters if name != "self")

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ConfigError(name, f"Invalid parameter {name!r} for estimator {type(self).__name__}; valid: {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        changed = []
        defaults = inspect.signature(type(self).__init__).parameters
        for name in self._param_names():
            value = getattr(self, name)
            default = defaults[name].default
            if not (value is default or (isinstance(value, (int, float, str, tuple)) and value == default)):
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


class _HogwildEstimator(_EstimatorParams):
    """fit/partial_fit shared by the linear classifier and regressor."""

    _is_classifier = False

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    # --- translation to TrainConfig ---------------------------------------------------------------------
    def _config(self):
        penalty = "none" if self.penalty is None else self.penalty
        alpha = float(self.alpha)
        if penalty == "l2":
            l2, l1 = alpha, 0.0
        elif penalty == "l1":
            l2, l1 = 0.0, alpha
        elif penalty == "elasticnet":
            l2, l1 = alpha * (1.0 - self.l1_ratio), alpha * self.l1_ratio
        elif penalty == "none":
            l2, l1 = 0.0, 0.0
        else:
            raise ValueError(f"penalty must be 'l2', 'l1', 'elasticnet' or None; got {self.penalty!r}")
        return TrainConfig(
            loss=self.loss, penalty=penalty if penalty != "elasticnet" or (l1 > 0 and l2 > 0) else "auto",
            l2=l2, l1=l1, epsilon=self.epsilon, fit_intercept=self.fit_intercept,
            class_weight=getattr(self, "class_weight", None), multiclass=getattr(self, "multiclass", "ovr"),
            schedule=self.learning_rate, lr=self.eta0, power_t=self.power_t, epochs=self.max_iter, tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            validation_fraction=self.validation_fraction if self.early_stopping else 0.0,
            seed=0 if self.random_state is None else self.random_state, average=_average_rows(self.average),
            mode=_resolved_mode(self.mode, self.random_state), threads=self.n_threads, batch_size=self.batch_size,
            dtype=self.dtype, device=self.device, shuffle=self.shuffle, hash_bits=getattr(self, "hash_bits", None),
            cluster=self.cluster, nodes=self.nodes, cross_node=self.cross_node, sync_every=self.sync_every,
        ).validate()

    # --- fitting ----------------------------------------------------------------------------------------
    def _check_Xy(self, X, y):
        X, y = load_xy(X, y)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            _warn_column_vector(stacklevel=3)
            y = y.ravel()
        csr = self._check_X(X, reset=True)
        if y.ndim != 1 or y.shape[0] != csr.n_rows:
            raise ValueError(f"y must have one value per row of X ({csr.n_rows}); got shape {y.shape}")
        if self._is_classifier:
            _check_classification_targets(y)
        elif not np.issubdtype(y.dtype, np.number) or y.dtype.kind == "c":
            raise ValueError(f"Unknown label type: regression needs numeric y; got dtype {y.dtype}")
        return csr, y

    def _check_X(self, X, reset):
        X, _ = load_xy(X)
        _check_not_complex(X)
        # training checks the canonical form and the values in the one pass it makes over the rows before its
        # first epoch (`hogwild.runners._setup.scan_features`); prediction checks them here
        csr = as_csr(X, np.dtype(self.dtype) if self.dtype in ("float32", "float64") else np.float64,
                     check_finite=not reset, check_canonical=not reset)
        _check_not_empty(csr.n_rows, csr.n_features)
        if not reset:
            if not self.__sklearn_is_fitted__():
                raise _not_fitted(type(self).__name__)
            if csr.n_features != self.n_features_in_ and getattr(self, "hash_bits", None) is None:
                raise ValueError(
                    f"X has {csr.n_features} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
        return csr

    def fit(self, X, y, sample_weight=None):
        """Train from scratch (or from the current weights with ``warm_start=True``); returns self."""
        csr, y = self._check_Xy(X, y)
        init = self.model_ if self.warm_start and self.__sklearn_is_fitted__() else None
        return self._train(csr, y, self._config(), sample_weight, init_model=init)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One more epoch over (X, y), continuing the step counter and optimizer state; returns self."""
        csr, y = self._check_Xy(X, y)
        config = self._config().replace(tol=None, validation_fraction=0.0)
        state = getattr(self, "_state", None)
        if state is None:
            if self._is_classifier and classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            config = config.replace(epochs=1)
            return self._train(csr, y, config, sample_weight, classes=classes)
        if csr.n_features != self.n_features_in_ and getattr(self, "hash_bits", None) is None:
            raise ValueError(
                f"X has {csr.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        config = config.replace(epochs=int(state["loop"]["epoch"]) + 1)
        return self._train(csr, y, config, sample_weight, classes=getattr(self, "classes_", None), init_state=state)

    def _train(self, csr, y, config, sample_weight, init_model=None, classes=None, init_state=None):
        from .engine import train

        result = train(csr, y, config, sample_weight=sample_weight, init_model=init_model, classes=classes,
                       init_state=init_state)
        self._set_model(result.model)
        self.history_ = result.history
        self.n_iter_ = result.epochs_run
        self._state = getattr(result, "state", None)
        engine = (self._state or {}).get("engine", {})
        # the global step of the schedules (a cluster run's state has none: count the rows seen, as scikit-learn)
        self.t_ = float(engine.get("t", self.n_iter_ * csr.n_rows))
        return self

    def _set_model(self, model):
        self.model_ = model
        self.n_features_in_ = model.n_features
        coef = np.asarray(model.coef).T
        if self._is_classifier:
            self.classes_ = model.classes
            self.coef_ = coef
        else:
            self.coef_ = coef[0]
        self.intercept_ = np.asarray(model.intercept).copy()

    @classmethod
    def from_model(cls, model, **params):
        """An estimator wrapping an already trained `LinearModel` (e.g. from `hogwild.load_model`)."""
        estimator = cls(loss=model.loss, **params)
        estimator._set_model(model)
        estimator._state = None
        estimator.history_ = []
        return estimator

    def _scores(self, X):
        csr = self._check_X(X, reset=False)
        return self.model_.decision_function(csr)

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier" if self._is_classifier else "regressor",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags() if self._is_classifier else None,
            regressor_tags=None if self._is_classifier else RegressorTags(),
            input_tags=InputTags(sparse=True),
            # Hogwild!'s races make async/locked runs on several threads differ from run to run, whatever the
            # seed; mode="auto" with a seed runs serially (`_resolved_mode`).
            non_deterministic=_racy(self.mode, self.n_threads),
        )


class HogwildClassifier(_HogwildEstimator):
    """Linear classifiers (logistic regression, linear SVM, ...) trained by Hogwild! SGD; scikit-learn's API."""

    _is_classifier = True

    def __init__(
        self, loss=_DEFAULTS.loss, penalty="l2", alpha=_DEFAULTS.l2, l1_ratio=0.15, fit_intercept=True,
        max_iter=1000, tol=1e-3, shuffle=True, epsilon=_DEFAULTS.epsilon, random_state=None,
        learning_rate=_DEFAULTS.schedule, eta0=_DEFAULTS.lr, power_t=_DEFAULTS.power_t, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=5, class_weight=None, warm_start=False, average=False,
        multiclass="ovr", mode=_DEFAULTS.mode, n_threads=None, batch_size=_DEFAULTS.batch_size,
        dtype=_DEFAULTS.dtype, device=_DEFAULTS.device, hash_bits=None, cluster=None, nodes=None,
        cross_node=_DEFAULTS.cross_node, sync_every=_DEFAULTS.sync_every,
    ):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.epsilon = epsilon
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.average = average
        self.multiclass = multiclass
        self.mode = mode
        self.n_threads = n_threads
        self.batch_size = batch_size
        self.dtype = dtype
        self.device = device
        self.hash_bits = hash_bits
        self.cluster = cluster
        self.nodes = nodes
        self.cross_node = cross_node
        self.sync_every = sync_every

    def decision_function(self, X):
        """Scores: (n,) for two classes (positive: classes_[1]), (n, K) for more."""
        return self._scores(X)

    def predict(self, X):
        """Predicted class labels."""
        scores = self._scores(X)
        return self.model_.predict_from_scores(scores)

    @property
    def predict_proba(self):
        """Class probabilities (n, K); only for log_loss, modified_huber and softmax (else AttributeError)."""
        if self.loss not in PROBA_LOSSES and self.multiclass != "softmax":
            raise AttributeError(f"predict_proba is not available for loss={self.loss!r}")
        return self._predict_proba

    def _predict_proba(self, X):
        scores = self._scores(X)
        return self.model_.proba_from_scores(scores)

    @property
    def predict_log_proba(self):
        self.predict_proba  # noqa: B018 - raises AttributeError where probabilities are unavailable
        def predict_log_proba(X):
            with np.errstate(divide="ignore"):
                return np.log(self._predict_proba(X))

        return predict_log_proba

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on (X, y)."""
        hits = (self.predict(X) == np.asarray(y).ravel()).astype(np.float64)
        return float(np.average(hits, weights=sample_weight))


class HogwildRegressor(_HogwildEstimator):
    """Linear regression (squared, huber, epsilon-insensitive losses) trained by Hogwild! SGD."""

    def __init__(
        self, loss="squared_error", penalty="l2", alpha=1e-4, l1_ratio=0.15, fit_intercept=True, max_iter=1000,
        tol=1e-3, shuffle=True, epsilon=_DEFAULTS.epsilon, random_state=None, learning_rate=_DEFAULTS.schedule,
        eta0=_DEFAULTS.lr, power_t=0.25, early_stopping=False, validation_fraction=0.1, n_iter_no_change=5,
        warm_start=False, average=False, mode=_DEFAULTS.mode, n_threads=None, batch_size=_DEFAULTS.batch_size,
        dtype=_DEFAULTS.dtype, device=_DEFAULTS.device, hash_bits=None, cluster=None, nodes=None,
        cross_node=_DEFAULTS.cross_node, sync_every=_DEFAULTS.sync_every,
    ):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.epsilon = epsilon
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.average = average
        self.mode = mode
        self.n_threads = n_threads
        self.batch_size = batch_size
        self.dtype = dtype
        self.device = device
        self.hash_bits = hash_bits
        self.cluster = cluster
        self.nodes = nodes
        self.cross_node = cross_node
        self.sync_every = sync_every

    def predict(self, X):
        """Predicted values."""
        return self._scores(X)

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2 on (X, y)."""
        y = np.asarray(y, dtype=np.float64).ravel()
        residual = np.average((y - self.predict(X)) ** 2, weights=sample_weight)
        total = np.average((y - np.average(y, weights=sample_weight)) ** 2, weights=sample_weight)
        return float(1.0 - residual / total) if total > 0 else 0.0


def _check_not_complex(X):
    if hasattr(X, "dtype") and getattr(X.dtype, "kind", "") == "c" or np.iscomplexobj(getattr(X, "data", X)):
        raise ValueError("Complex data not supported")


def _check_not_empty(n_rows, n_features):
    """scikit-learn's messages for an X without features or rows."""
    shape = (n_rows, n_features)
    if n_features == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 is required.")
    if n_rows == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 is required.")


def _check_classification_targets(y):
    """Refuse continuous targets for a classifier, in scikit-learn's words."""
    if y.dtype.kind == "f":
        from hogwild.kernels.stats import finite_and_integral

        finite, integral = finite_and_integral(np.ravel(y))  # (1-D: `_check_Xy`)
        if not finite:
            raise ValueError("Input y contains NaN or infinity.")
        if not integral:
            raise ValueError("Unknown label type: continuous. Maybe you are trying to fit a classifier on a regressor target")
    elif y.dtype.kind == "O":
        kinds = {type(value) for value in y}
        if len(kinds) > 1:
            raise ValueError(f"Unknown label type: mixed types {sorted(k.__name__ for k in kinds)}")


class _MLPEstimator(_EstimatorParams):
    """Shared parts of `MLPClassifier` and `MLPRegressor` (parameters, fit, partial_fit, attributes)."""

    _loss = "log_loss"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        solver="adam",
        optimizer=None,
        learning_rate_init=0.001,
        learning_rate="constant",
        alpha=1e-4,
        batch_size=64,
        max_iter=20,
        momentum=0.9,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        clip_norm=None,
        shuffle=True,
        tol=None,
        n_iter_no_change=5,
        early_stopping=False,
        validation_fraction=0.1,
        random_state=None,
        mode="auto",
        n_threads=None,
        dtype="float32",
        device="cpu",
        hash_bits=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.momentum = momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.clip_norm = clip_norm
        self.shuffle = shuffle
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.mode = mode
        self.n_threads = n_threads
        self.dtype = dtype
        self.device = device
        self.hash_bits = hash_bits

    def _config(self, epochs):
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, (int, np.integer)) else tuple(int(h) for h in hidden)
        if self.random_state is None:
            seed = getattr(self, "_seed", None)
            if seed is None:
                seed = self._seed = int(np.random.SeedSequence().entropy % (2**31))
        elif isinstance(self.random_state, (int, np.integer)):
            seed = int(self.random_state)
        else:
            raise ConfigError("random_state", f"random_state must be None or an integer; got {self.random_state!r}")
        changes = dict(
            loss=self._loss,
            hidden=hidden,
            activation=self.activation,
            optimizer=self.optimizer or self.solver,
            lr=float(self.learning_rate_init),
            schedule=self.learning_rate,
            l2=float(self.alpha),
            batch_size=int(self.batch_size),
            epochs=int(epochs),
            momentum=float(self.momentum),
            beta1=float(self.beta_1),
            beta2=float(self.beta_2),
            clip_norm=self.clip_norm,
            shuffle=bool(self.shuffle),
            tol=self.tol,
            n_iter_no_change=int(self.n_iter_no_change),
            validation_fraction=float(self.validation_fraction) if self.early_stopping else 0.0,
            seed=seed,
            mode=_resolved_mode(self.mode, self.random_state),
            threads=self.n_threads,
            dtype=self.dtype,
            device=self.device,
            adam_epsilon=float(self.epsilon),
            hash_bits=getattr(self, "hash_bits", None),
        )
        return TrainConfig(model="mlp", **changes).validate()

    # --- training ------------------------------------------------------------------------------------
    def fit(self, X, y, X_val=None, y_val=None, callback=None, sample_weight=None):
        """Train from a fresh network for ``max_iter`` epochs; returns ``self``."""
        self._seed = None
        self._state = None
        return self._train(X, y, self.max_iter, X_val, y_val, callback, None, sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One more epoch over ``(X, y)``, keeping the weights and optimizer state; returns ``self``."""
        state = getattr(self, "_state", None)
        epochs = 1 if state is None else int(state["loop"]["epoch"]) + 1
        if classes is None and state is not None:
            classes = getattr(self.model_, "classes", None)
        return self._train(X, y, epochs, None, None, None, classes, sample_weight, state)

    # --- scikit-learn's input checks -------------------------------------------------------------------
    def _check_X(self, X, reset):
        """X after scikit-learn's input checks (lists become arrays); the network reads it as given."""
        X, _ = load_xy(X)
        if not (sp.issparse(X) or isinstance(X, CSR) or hasattr(X, "shape")):
            X = np.asarray(X)
        _check_not_complex(X)
        shape = (X.n_rows, X.n_features) if isinstance(X, CSR) else tuple(X.shape)
        if len(shape) != 2:
            raise ValueError(f"Expected a 2D array of features (rows x features); got an array of shape {shape}. "
                             "Reshape your data: X.reshape(-1, 1) for one feature, X.reshape(1, -1) for one row.")
        _check_not_empty(*shape)
        if not reset:
            self._check_fitted()
            # a hashed model takes any width (`hash_bits`: the columns are hashed into its 2^B features)
            if shape[1] != self.n_features_in_ and getattr(self, "hash_bits", None) is None:
                raise ValueError(f"X has {shape[1]} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input.")
        return X

    def _check_y(self, y, n_rows):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if self._loss == "log_loss":
            if y.ndim == 2 and y.shape[1] == 1:
                _warn_column_vector(stacklevel=4)
                y = y.ravel()
            _check_classification_targets(y)
        elif not np.issubdtype(y.dtype, np.number) or y.dtype.kind == "c":
            raise ValueError(f"Unknown label type: regression needs numeric y; got dtype {y.dtype}")
        if y.ndim not in (1, 2) or y.shape[0] != n_rows:
            raise ValueError(f"y must have one value (or row of values) per row of X ({n_rows}); got shape {y.shape}")
        return y

    def _train(self, X, y, epochs, X_val, y_val, callback, classes, sample_weight, state=None):
        from .engine import train

        reset = state is None
        X = self._check_X(X, reset=reset)
        y = self._check_y(y, X.n_rows if isinstance(X, CSR) else X.shape[0])
        config = self._config(epochs)
        if classes is not None:
            classes = np.unique(np.asarray(classes))
        result = train(X, y, config, X_val=X_val, y_val=y_val, callback=callback, init_state=state,
                       classes=classes, sample_weight=sample_weight)
        self._state = result.state
        self.model_ = result.model
        self.history_ = list(result.history)
        self.n_iter_ = len(self.history_)
        self.loss_curve_ = [record["train_loss"] for record in self.history_]
        self.n_features_in_ = self.model_.n_features
        self.coefs_ = [c.copy() for c in self.model_.coefs]
        self.intercepts_ = [b.copy() for b in self.model_.intercepts]
        return self

    def _check_fitted(self):
        if getattr(self, "model_", None) is None:
            raise _not_fitted(type(self).__name__)
        return self.model_

    def __sklearn_is_fitted__(self):
        return getattr(self, "model_", None) is not None

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        classifier = self._loss == "log_loss"
        return Tags(
            estimator_type="classifier" if classifier else "regressor",
            target_tags=TargetTags(required=True, multi_output=not classifier, single_output=True),
            classifier_tags=ClassifierTags() if classifier else None,
            regressor_tags=None if classifier else RegressorTags(),
            input_tags=InputTags(sparse=True),
            non_deterministic=_racy(self.mode, self.n_threads),
        )

    def predict(self, X):
        return self._check_fitted().predict(self._check_X(X, reset=False))


class MLPClassifier(_MLPEstimator):
    """Multi-layer perceptron classifier (softmax cross-entropy, or logistic output for two classes).

    scikit-learn's parameter names; ``solver`` (or its alias ``optimizer``) is one of sgd, momentum, adam,
    rmsprop; ``mode`` auto|async|sync|serial, ``n_threads``, ``dtype``, ``device`` as in `TrainConfig` (``auto``
    with an integer ``random_state`` trains serially, so that seeded fits reproduce; ``random_state=None`` draws
    a fresh seed per fit, as scikit-learn's MLP does). ``learning_rate="adaptive"`` is scikit-learn's (for every
    solver here, not only sgd). Defaults differ from scikit-learn's where the Hogwild! engine wants it:
    ``batch_size=64`` (the micro-batch each worker updates the shared weights with: per epoch batch 32 cost 1.75x
    batch 64 at the same accuracy on shifted MNIST, docs/benchmarks.md), ``max_iter=20`` and no early stopping
    unless ``tol`` is set.
    """

    _loss = "log_loss"

    @property
    def classes_(self):
        return self._check_fitted().classes

    def predict_proba(self, X):
        return self._check_fitted().predict_proba(self._check_X(X, reset=False))

    def decision_function(self, X):
        return self._check_fitted().decision_function(self._check_X(X, reset=False))

    def score(self, X, y):
        """Mean accuracy on ``(X, y)``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


class MLPRegressor(_MLPEstimator):
    """Multi-layer perceptron regressor (squared error; ``y`` may have several columns)."""

    _loss = "squared_error"

    def predict(self, X):
        """Predicted values, float64 whatever the network's type (as scikit-learn's regressors return)."""
        return np.asarray(super().predict(X), dtype=np.float64)

    def score(self, X, y):
        """Coefficient of determination R^2 on ``(X, y)`` (averaged uniformly over outputs)."""
        y = np.asarray(y, dtype=np.float64)
        pred = np.asarray(self.predict(X), dtype=np.float64).reshape(y.shape)
        y2, p2 = y.reshape(len(y), -1), pred.reshape(len(y), -1)
        residual = ((y2 - p2) ** 2).sum(axis=0)
        total = ((y2 - y2.mean(axis=0)) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(total > 0, 1.0 - residual / total, np.where(residual == 0, 1.0, 0.0))
        return float(np.mean(r2))


__all__ = ["HogwildClassifier", "HogwildRegressor", "MLPClassifier", "MLPRegressor", "LinearModel", "NotFittedError"]
