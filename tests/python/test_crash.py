"""kill -9 at random points of a commit loop: after a restart, running is always the last
acknowledged commit or the one in flight, never a mix."""

import random
import threading
import time

from conftest import NS_BASE, NS_IANAIFT, NS_IF, Agent

ROUNDS = 50


def commit_config(n):
    """Commit n: interface `loop` says n, and interfaces e0..e{n-1} exist."""
    return (
        f'<config xmlns="{NS_BASE}"><interfaces xmlns="{NS_IF}" xmlns:ianaift="{NS_IANAIFT}">'
        f"<interface><name>loop</name><type>ianaift:softwareLoopback</type>"
        f"<description>{n}</description></interface>"
        f"<interface><name>e{n - 1}</name><type>ianaift:ethernetCsmacd</type></interface>"
        "</interfaces></config>"
    )


def edit(target, n):
    return f"<edit-config><target><{target}/></target>{commit_config(n)}</edit-config>"


def running_state(agent):
    with agent.connect() as m:
        data = m.get_config(source="running").data
    ns = {"if": NS_IF}
    desc = data.xpath("//if:interface[if:name='loop']/if:description/text()", namespaces=ns)
    names = set(data.xpath("//if:interface/if:name/text()", namespaces=ns))
    n = int(desc[0]) if desc else 0
    return n, names


def test_kill9_during_commit_loop(workdir):
    agent = Agent(workdir)
    rng = random.Random(20261126)
    acked = 0
    for round_no in range(ROUNDS):
        agent.start()
        n, names = running_state(agent)
        # Running is the last acknowledged commit or the one that was in flight.
        assert n in (acked, acked + 1), f"round {round_no}: running has {n}, acked {acked}"
        expected = {"loop"} | {f"e{i}" for i in range(n)} if n else set()
        assert names == expected, f"round {round_no}: a mix of commits: {sorted(names)}"
        acked = n

        stop = threading.Event()
        progress = {"acked": acked}

        def loop():
            # A raw base:1.1 client: many commits per round, and it sees the kill at once.
            try:
                c = agent.raw(base11=True)
                c.send_hello()
                # A crash between an edit of the candidate and its commit leaves the candidate
                # holding changes (it survives restarts); start each round from running.
                assert "<ok/>" in c.rpc("<discard-changes/>", "discard")
                k = progress["acked"]
                while not stop.is_set():
                    k += 1
                    if k % 2:
                        reply = c.rpc(edit("running", k), str(k))
                    else:
                        reply = c.rpc(edit("candidate", k), f"{k}a")
                        assert "<ok/>" in reply, reply
                        reply = c.rpc("<commit/>", str(k))
                    assert "<ok/>" in reply, reply
                    progress["acked"] = k
            except (EOFError, OSError, Exception) as e:  # the agent was killed mid-request
                progress["error"] = repr(e)

        t = threading.Thread(target=loop)
        t.start()
        time.sleep(rng.uniform(0.05, 0.6))
        agent.kill9()
        stop.set()
        t.join(timeout=30)
        acked = progress["acked"]
        assert "AssertionError" not in progress.get("error", ""), progress["error"]
    agent.start()
    n, _ = running_state(agent)
    assert n in (acked, acked + 1)
    assert acked > ROUNDS, "the loop committed too little to exercise the crash points"
    agent.stop()
