"""Data in and out (installed as ``hogwild.datasets``): LIBSVM text, the binary cache, synthetic sets, IDX."""
