"""Where a webhook may point: the URL rules and the address rule, as tables."""

from __future__ import annotations

import ipaddress

import pytest

from server import webhook_targets as targets
from server.settings import SettingsError, load

NONE = targets.NOTHING


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "0.0.0.0",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.1",
        "203.0.113.1",
        "224.0.0.251",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "2001::1",
        "2001:db8::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
    ],
)
def test_addresses_refused(address: str) -> None:
    assert not targets.address_allowed(ipaddress.ip_address(address), NONE)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700::1111", "2001:4860::1"]
)
def test_public_addresses_allowed(address: str) -> None:
    assert targets.address_allowed(ipaddress.ip_address(address), NONE)


def test_the_allow_list_lifts_the_rule_for_what_it_names() -> None:
    allow = targets.AllowList.parse(" 127.0.0.1, hooks.internal. ,10.20.0.0/16,::1")
    for yes in ("127.0.0.1", "::ffff:127.0.0.1", "10.20.3.4", "::1"):
        assert targets.address_allowed(ipaddress.ip_address(yes), allow), yes
    for no in ("127.0.0.2", "10.21.0.1", "192.168.1.1"):
        assert not targets.address_allowed(ipaddress.ip_address(no), allow), no
    assert allow.allows_name("hooks.internal") and not allow.allows_name("other.internal")
    for bad in ("10.0.0.0/33", "a b", "http://x"):
        with pytest.raises(ValueError):
            targets.AllowList.parse(bad)
    with pytest.raises(SettingsError, match="WEBHOOK_ALLOW_HOSTS"):
        load({"PATROLSYNC_WEBHOOK_ALLOW_HOSTS": "10.0.0.0/33"})
    assert load({"PATROLSYNC_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}).webhook_allow_hosts


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:8080/hook", "address is not allowed"),
        ("http://127.1/", "address is not allowed"),
        ("http://2130706433/", "address is not allowed"),
        ("http://0x7f000001/", "address is not allowed"),
        ("http://localhost:9000/", "address is not allowed"),
        ("http://LOCALHOST./", "address is not allowed"),
        ("http://api.localhost/", "address is not allowed"),
        ("http://[::1]:8080/", "address is not allowed"),
        ("http://[::ffff:127.0.0.1]/", "address is not allowed"),
        ("http://169.254.169.254/latest/meta-data/", "address is not allowed"),
        ("http://10.0.0.5/", "address is not allowed"),
        ("http://192.168.0.1/", "address is not allowed"),
        ("https://[fe80::1]/", "address is not allowed"),
        ("http://hooks.example/a\r\nX-Injected: 1", "control characters"),
        ("http://hooks.example/a\nb", "control characters"),
        ("http://hooks.example/a b", "control characters"),
        ("http://hooks.example/\t", "control characters"),
        ("http://hooks.example/\x00", "control characters"),
        ("http://hooks.example/ü", "printable ASCII"),
        ("http://user:pass@hooks.example/", "user name or password"),
        ("http://user@hooks.example/", "user name or password"),
        ("http://hooks.example\\@127.0.0.1/", "user name or password"),
        ("ftp://hooks.example/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http:///path", "host is required"),
        ("http://:80/", "host is required"),
        ("http://hooks.example:0/", "bad host or port"),
        ("http://hooks.example:99999/", "bad host or port"),
        ("http://hooks.exa*mple/", "bad host or port"),
        ("http://hooks.example/" + "a" * 2000, "longer than"),
    ],
)
def test_registration_refusals(url: str, problem: str) -> None:
    with pytest.raises(targets.UrlRefused, match="url: .*" + problem.replace("(", ".")):
        targets.check_registration(url, NONE)


def test_registration_accepts_names_and_public_addresses() -> None:
    for url in ("https://hooks.example/a?b=1", "http://8.8.8.8:8080/", "https://[2606:4700::1]/"):
        assert targets.check_registration(url, NONE).scheme in ("http", "https")
    target = targets.check_registration("HTTPS://Hooks.Example.:8443/p?q", NONE)
    assert (target.host, target.port, target.target) == ("hooks.example", 8443, "/p?q")
    assert target.host_header == "hooks.example:8443"
    local = targets.AllowList.parse("127.0.0.1,localhost")
    assert targets.check_registration("http://127.0.0.1:9/x", local).literal is not None
    assert targets.check_registration("http://localhost:9/x", local).host == "localhost"
