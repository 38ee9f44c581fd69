"""hogwild: Numba-accelerated, shared-memory Hogwild! SGD for sparse linear models and small MLPs.

Public names are imported lazily so that ``import hogwild`` (and the CLI's start-up) does not compile or
import Numba until a model is actually trained.
"""

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "TrainConfig": "hogwild.config",
    "HogwildError": "hogwild.errors",
    "ConfigError": "hogwild.errors",
    "LibsvmFormatError": "hogwild.errors",
    "DataError": "hogwild.errors",
    "ModelFormatError": "hogwild.errors",
    "CheckpointError": "hogwild.errors",
    "DivergenceError": "hogwild.errors",
    "WorkerError": "hogwild.errors",
    "NoCudaError": "hogwild.errors",
    # engine and Python API (sparse linear models)
    "train": "hogwild.engine",
    "TrainResult": "hogwild.engine",
    "LinearModel": "hogwild.models",
    "HogwildClassifier": "hogwild.estimators",
    "HogwildRegressor": "hogwild.estimators",
    # model files
    "load_model": "hogwild.model_io",
    "save_model": "hogwild.model_io",
    # MLPs
    "MLPModel": "hogwild.models",
    "MLPClassifier": "hogwild.estimators",
    "MLPRegressor": "hogwild.estimators",
    # feature hashing, watching a run, memory
    "hash_features": "hogwild.hashing",
    "JsonlLog": "hogwild.monitor",
    "peak_resident_bytes": "hogwild.memory",
    # data
    "load_libsvm": "hogwild.datasets.libsvm",
    "load_libsvm_files": "hogwild.datasets.libsvm",
    "dump_libsvm": "hogwild.datasets.libsvm",
    "load_idx": "hogwild.datasets.idx",
    "make_synthetic": "hogwild.datasets.synth",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'hogwild' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
