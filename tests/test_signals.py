"""Ctrl-C/SIGTERM handling: the first signal sets a flag polled at chunk boundaries, a second Ctrl-C is 'now'."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from hogwild.signals import graceful_interrupts

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def deliver(signum, flag=None):
    """Send ``signum`` to this process and give the main thread a moment to run the Python handler."""
    os.kill(os.getpid(), signum)
    deadline = time.monotonic() + 2.0
    while flag is not None and not flag.is_set() and time.monotonic() < deadline:
        time.sleep(0.001)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_first_signal_only_sets_the_flag(signum, code):
    with graceful_interrupts() as flag:
        assert flag.installed and not flag.is_set()
        deliver(signum, flag)
        assert flag.is_set() and flag.signum == signum and flag.exit_code == code


def test_second_ctrl_c_raises_at_once_and_restores_handlers():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with graceful_interrupts() as flag:
            deliver(signal.SIGINT, flag)
            # The handler is back to the previous one as soon as the second Ctrl-C arrives.
            deliver(signal.SIGINT)
            time.sleep(0.5)
            pytest.fail("the second Ctrl-C did not interrupt")
    assert flag.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_then_ctrl_c_also_raises():
    with pytest.raises(KeyboardInterrupt):
        with graceful_interrupts() as flag:
            deliver(signal.SIGTERM, flag)
            deliver(signal.SIGINT)
            time.sleep(0.5)
    assert flag.signum == signal.SIGTERM, "the first signal is the one reported"


def test_previous_handlers_are_restored_on_exit():
    seen = []
    custom = lambda signum, frame: seen.append(signum)  # noqa: E731
    old_int = signal.signal(signal.SIGINT, custom)
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        with graceful_interrupts():
            assert signal.getsignal(signal.SIGINT) is not custom
        assert signal.getsignal(signal.SIGINT) is custom
        assert signal.getsignal(signal.SIGTERM) is old_term
        deliver(signal.SIGINT)
        time.sleep(0.01)
        assert seen == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, old_int)


def test_restored_even_when_the_block_raises():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ValueError):
        with graceful_interrupts():
            raise ValueError("boom")
    assert signal.getsignal(signal.SIGTERM) is before


def test_sets_the_given_event():
    stop = threading.Event()  # e.g. WorkerPool.stop, which the workers poll between chunks
    with graceful_interrupts(event=stop) as flag:
        deliver(signal.SIGINT, flag)
    assert stop.is_set()


def test_off_the_main_thread_nothing_is_installed():
    before = signal.getsignal(signal.SIGINT)
    seen = {}

    def body():
        with graceful_interrupts() as flag:
            seen["installed"] = flag.installed
            seen["handler"] = signal.getsignal(signal.SIGINT)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == {"installed": False, "handler": before}


CHILD = textwrap.dedent(
    """
    import sys, time
    from hogwild.signals import graceful_interrupts
    chunks = 0
    try:
        with graceful_interrupts() as flag:
            print("ready", flush=True)
            while not flag.is_set():          # the engine's loop over chunks
                time.sleep(0.01)
                chunks += 1
            print(f"stopped at a chunk boundary after signal {flag.signum}", flush=True)
            while True:                       # a slow checkpoint write, say
                time.sleep(0.01)
    except KeyboardInterrupt:
        print("second signal: stopped at once", flush=True)
        sys.exit(130)
    """
)


def test_real_process_first_signal_graceful_second_immediate():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGINT)
        line = child.stdout.readline().strip()
        assert line == f"stopped at a chunk boundary after signal {int(signal.SIGINT)}", line
        child.send_signal(signal.SIGINT)
        assert child.stdout.readline().strip() == "second signal: stopped at once"
        assert child.wait(timeout=30) == 130
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
