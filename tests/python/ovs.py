"""Open vSwitch as a customer edge in a network namespace: ovsdb-server and ovs-vswitchd with
their own files, driven through ovs-vsctl and ovs-appctl. Used by the E-Trunk tests (which start
it themselves) and the lab tests (where `mldhb lab up` starts it and the tests attach)."""

import os
import re
import signal
import subprocess
import time


class Ovs:
    """OVS whose daemons run in namespace `ns` (a name) with every file under `directory`."""

    def __init__(self, ns, directory):
        self.ns = ns
        self.dir = directory
        self.env = dict(os.environ, OVS_RUNDIR=self.dir, OVS_DBDIR=self.dir,
                        OVS_LOGDIR=self.dir, OVS_SYSCONFDIR=self.dir)
        self.db = f"unix:{self.dir}/db.sock"

    def run(self, *args, check=True):
        return subprocess.run(["ip", "netns", "exec", self.ns, *args], env=self.env,
                              check=check, capture_output=True, text=True).stdout

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        subprocess.run(["ovsdb-tool", "create", f"{self.dir}/conf.db",
                        "/usr/share/openvswitch/vswitch.ovsschema"], check=True, env=self.env)
        self.run("ovsdb-server", f"{self.dir}/conf.db", f"--remote=p{self.db}",
                 f"--pidfile={self.dir}/ovsdb-server.pid", f"--log-file={self.dir}/ovsdb-server.log",
                 "--no-chdir", "--detach")
        self.vsctl("--no-wait", "init")
        self.run("ovs-vswitchd", self.db, f"--pidfile={self.dir}/ovs-vswitchd.pid",
                 f"--log-file={self.dir}/ovs-vswitchd.log", "--no-chdir", "--detach")

    def vsctl(self, *args):
        return self.run("ovs-vsctl", f"--db={self.db}", *args)

    def appctl(self, *args):
        with open(f"{self.dir}/ovs-vswitchd.pid") as f:
            pid = f.read().strip()
        return self.run("ovs-appctl", "-t", f"{self.dir}/ovs-vswitchd.{pid}.ctl", *args)

    def enabled_members(self, bond="bond0"):
        """The bond members OVS has enabled (in the link aggregation)."""
        out = self.appctl("bond/show", bond)
        return set(re.findall(r"^member ([\w-]+): enabled", out, re.M))

    def log_tail(self, lines=20):
        try:
            with open(f"{self.dir}/ovs-vswitchd.log") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        for name in ("ovs-vswitchd", "ovsdb-server"):
            try:
                with open(f"{self.dir}/{name}.pid") as f:
                    pid = int(f.read().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
