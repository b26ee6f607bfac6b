"""The agent answers ncclient over real SSH: hello, edit, commit, read back."""

from conftest import NS_IF, iface_config


def test_edit_commit_and_read_back(agent):
    with agent.connect() as m:
        assert "urn:ietf:params:netconf:base:1.1" in m.server_capabilities
        m.edit_config(target="candidate", config=iface_config("eth0", "uplink"))
        m.commit()
        data = m.get_config(source="running").data
        names = data.xpath("//if:interface/if:name/text()", namespaces={"if": NS_IF})
        assert names == ["eth0"]
        desc = data.xpath("//if:interface/if:description/text()", namespaces={"if": NS_IF})
        assert desc == ["uplink"]
