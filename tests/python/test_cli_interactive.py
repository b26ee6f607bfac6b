"""`mldhb cli` interactive mode under tmux: `?` help that keeps the line, Tab completion,
history, the `[~name]`/`[*name]` prompts, error carets and the question on leaving with
uncommitted changes, read back from the screen."""

import os
import shutil
import subprocess
import time

import pytest

from conftest import BIN, data_of, xp

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None and not os.environ.get("CI"),
    reason="tmux is not installed (CI installs it)",
)


class Screen:
    def __init__(self, agent):
        self.name = f"mldhb-cli-{os.getpid()}-{agent.port}"
        pw = os.path.join(agent.workdir, "pw")
        with open(pw, "w") as f:
            f.write("admin\n")
        cmd = (
            f"{BIN} cli --port {agent.port} --user admin --password-file {pw} "
            f"--known-hosts {agent.workdir}/known_hosts; echo EXIT=$?; sleep 600"
        )
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "120", "-y", "40", cmd],
                       check=True)

    def text(self):
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True, check=True).stdout

    def keys(self, *keys):
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text):
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)

    def wait(self, check, timeout=15):
        deadline = time.time() + timeout
        while True:
            screen = self.text()
            if check(screen):
                return screen
            if time.time() > deadline:
                raise AssertionError("screen never matched:\n" + screen)
            time.sleep(0.05)

    def wait_for(self, s, timeout=15):
        return self.wait(lambda t: s in t, timeout)

    def last_line(self):
        lines = [l for l in self.text().splitlines() if l.strip()]
        return lines[-1] if lines else ""

    def line_is(self, want):
        """Waits until the cursor line reads `want` (the pane drops trailing blanks)."""
        return self.wait(lambda t: self.last_line() == want.rstrip())

    def close(self):
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def screen(agent):
    s = Screen(agent)
    yield s
    s.close()


def mld_enabled(agent, name):
    with agent.quiet() as m:
        d = data_of(m.get_config(source="running"))
        return xp(d, f"//if:interface[if:name='{name}']/mld:mld/mld:enable/text()")


def test_interactive_session(agent, screen):
    s = screen
    s.wait_for("<mldhb>")
    # Tab completes a unique keyword.
    s.type("sys")
    s.keys("Tab")
    s.line_is("<mldhb>system-view")
    s.keys("Enter")
    s.line_is("[~mldhb]")
    # Entering a new interface creates it: the candidate now differs from running.
    s.type("interface eth3")
    s.keys("Enter")
    s.line_is("[*mldhb-eth3]")
    # `?` lists what fits here and keeps the typed words.
    s.type("mld ?")
    screen = s.line_is("[*mldhb-eth3]mld ")
    assert "  enable " in screen and "  static-group " in screen and "  robust-count " in screen
    s.type("ena")
    s.keys("Tab")
    s.line_is("[*mldhb-eth3]mld enable")
    s.keys("Enter")
    s.line_is("[*mldhb-eth3]")
    # `?` on a parameter shows its type, range and default.
    s.type("mld robust-count ?")
    screen = s.line_is("[*mldhb-eth3]mld robust-count ")
    assert "INTEGER<2-5>" in screen and "default 2" in screen
    s.keys("C-u")
    s.line_is("[*mldhb-eth3]")
    # An out-of-range value: caret under the value, nothing changes.
    s.type("vrrp6 vrid 1 priority 300")
    s.keys("Enter")
    screen = s.wait_for("Error: Wrong parameter found at '^' position. The value must be in the range 1-254.")
    lines = screen.splitlines()
    i = next(n for n, l in enumerate(lines) if l.startswith("[*mldhb-eth3]vrrp6 vrid 1 priority 300"))
    assert lines[i + 1].index("^") == len("[*mldhb-eth3]vrrp6 vrid 1 priority "), screen
    assert mld_enabled(agent, "eth3") == []
    s.type("commit")
    s.keys("Enter")
    s.line_is("[~mldhb-eth3]")
    assert mld_enabled(agent, "eth3") == ["true"]
    # History: Up recalls the previous lines.
    s.keys("Up")
    s.line_is("[~mldhb-eth3]commit")
    s.keys("Up")
    s.line_is("[~mldhb-eth3]vrrp6 vrid 1 priority 300")
    s.keys("C-u")
    # A system-view command from the interface view runs there; the sysname sets the prompt.
    s.type("sysname R1")
    s.keys("Enter")
    s.line_is("[*mldhb]")
    s.type("commit")
    s.keys("Enter")
    s.line_is("[~R1]")
    s.type("display current-configuration")
    s.keys("Enter")
    screen = s.wait_for("interface eth3\n mld enable\n")
    assert "sysname R1" in screen
    # Leaving with uncommitted changes asks; "n" discards them.
    s.type("interface eth3")
    s.keys("Enter")
    s.type("undo mld enable")
    s.keys("Enter")
    s.line_is("[*R1-eth3]")
    s.type("return")
    s.keys("Enter")
    s.wait_for("Uncommitted configurations found")
    s.type("n")
    s.keys("Enter")
    s.line_is("<R1>")
    assert mld_enabled(agent, "eth3") == ["true"]
    s.type("quit")
    s.keys("Enter")
    s.wait_for("EXIT=0")
