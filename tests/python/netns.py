"""Network namespaces for tests: creation, commands inside, and entering one from Python."""

import contextlib
import ctypes
import os
import subprocess

import pytest

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def require_root():
    """Namespace tests run as root. CI (CI=1) is root and must never skip them."""
    if os.geteuid() == 0:
        return
    if os.environ.get("CI"):
        pytest.fail("network-namespace tests must run as root in CI")
    pytest.skip("network-namespace tests need root (run the suite as root to include them)")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


# Every namespace this test process made, for the cleanup fixture of conftest.
CREATED = set()


class Netns:
    def __init__(self, name):
        self.name = name
        sh("ip", "netns", "add", name)
        CREATED.add(name)
        self.run("ip", "link", "set", "lo", "up")

    def run(self, *args, check=True):
        return sh("ip", "netns", "exec", self.name, *args, check=check)

    def delete(self):
        sh("ip", "netns", "del", self.name, check=False)

    @contextlib.contextmanager
    def entered(self):
        """Runs the block with this thread in the namespace (sockets made here stay in it)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into " + self.name)
            yield
        finally:
            _libc.setns(own, CLONE_NEWNET)
            os.close(own)
            os.close(target)
