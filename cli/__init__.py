"""The ``hogwild`` command line (installed as ``hogwild.cli``)."""
