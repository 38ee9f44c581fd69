"""Start-up stays light: help and option errors never import Numba (nor NumPy), so they answer at once.

No timing is asserted here (rule: no test asserts speed); what is checked is which modules get imported,
which is what decides the start-up time.
"""

import subprocess
import sys

import pytest


def imported_modules(*cli_args):
    """Top-level module names imported by running the CLI with ``cli_args`` in a fresh interpreter."""
    code = (
        "import sys\n"
        "from hogwild.cli.main import main\n"
        "try:\n"
        f"    main({list(cli_args)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return set(done.stdout.split())


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["train", "--help"],
        ["predict", "--help"],
        ["evaluate", "--help"],
        ["train", "x.svm", "--threads", "-3"],
    ],
)
def test_help_and_usage_errors_do_not_import_numba(args):
    modules = imported_modules(*args)
    assert "click" in modules, modules  # the probe itself ran
    assert "numba" not in modules
    assert "numpy" not in modules and "scipy" not in modules


def test_importtime_report_shows_no_numba_for_help():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "from hogwild.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"],
        capture_output=True, text=True, timeout=120,
    )
    modules = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "hogwild.cli.main" in modules
    assert not [m for m in modules if m.split(".")[0] == "numba"]
