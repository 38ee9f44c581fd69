"""``hogwild bench``: the speedup study, an application of the library (installed as ``hogwild.bench``).

It uses only the library's front door, `hogwild.engine.train`, and its public names; nothing in the library
imports it. One job per module:

- `study`: `run_bench`, the modes x threads x devices study against peers on one split, and our engine's runs;
- `data`: the one dataset (LIBSVM, MNIST IDX, synthetic presets) in the engine's layout, and its sparsity;
- `problem`: the shared split and the ONE objective every system's parameters are scored with;
- `peers`: scikit-learn, Vowpal Wabbit and LIBLINEAR on the same split; `torch_peer`: PyTorch (MLPs, CPU and GPU);
- `machine`: the machine (CPU, memory, GPU, core-to-core round trip) and its process ceiling;
- `measures`: speedups, shares of the ceiling, targets and times to target, from run records;
- `report`: the Markdown table, the terminal summary, the plot, and replacing a block of a Markdown file.

The names below are importable from ``hogwild.bench`` itself, loaded on first use.
"""

_EXPORTS = {
    "run_bench": "study",
    "RUN_KEYS": "study",
    "load_dataset": "data",
    "machine_info": "machine",
    "process_ceiling": "machine",
    "to_markdown": "report",
    "summary_lines": "report",
    "plot": "report",
    "replace_section": "report",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hogwild.bench' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
