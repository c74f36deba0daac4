"""Webhook targets (monitoring/webhook_targets.py): loopback, private and link-local hosts are refused
when a monitor or policy is created and again at each delivery, unless LOOPLINE_WEBHOOK_ALLOW
allows them; an allowed delivery goes to the address that was checked, with its own Host."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.types import Gate, Policy
from loopline.config import Settings
from loopline.context import Context
from loopline.errors import InvalidInput
from loopline.monitoring.alerts import post_alert
from loopline.monitoring.sql_store import SqlMonitoringStore
from loopline.monitoring.webhook_targets import Allow, Refused, check_target, check_webhooks


class Receiver:
    """An HTTP receiver on 127.0.0.1 that records the Host header of each POST."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        received = self.hosts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                received.append(self.headers["Host"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",  # a name that resolves to loopback
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",  # loopback behind an IPv4-mapped address
        "http://[fd00::1]/hook",
    ],
)
def test_non_public_targets_are_refused_by_default(url: str) -> None:
    with pytest.raises(Refused, match="non-public"):
        check_target(url, Allow.parse(""))


def test_the_allow_list_admits_hosts_addresses_and_networks() -> None:
    assert check_target("http://93.184.216.34/x", Allow.parse("")).address == "93.184.216.34"  # public
    assert check_target("http://127.0.0.1:9/x", Allow.parse("127.0.0.1")).address == "127.0.0.1"
    assert check_target("http://10.1.2.3/x", Allow.parse("10.0.0.0/8")).address == "10.1.2.3"
    with pytest.raises(Refused):
        check_target("http://10.1.2.3/x", Allow.parse("10.9.0.0/16"))
    assert check_target("https://hooks.internal/x", Allow.parse("hooks.internal")).address is None
    assert check_target("http://localhost/x", Allow.parse("*")).address is None
    with pytest.raises(Refused, match="http"):
        check_target("ftp://example.com/x", Allow.parse("*"))


def test_a_refused_delivery_is_a_logged_failure_and_sends_nothing(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hooks/T000/SECRETPATH"
    d = post_alert(url, {"event": "x"}, retries=0)
    assert not d.ok and d.attempts == 0 and "non-public" in d.error
    assert receiver.hosts == []
    assert "not sent" in caplog.text and "SECRETPATH" not in caplog.text  # a hook's path is its secret


def test_an_allowed_delivery_goes_to_the_checked_address_with_its_host(receiver: Receiver) -> None:
    d = post_alert(f"http://localhost:{receiver.port}/hook", {"event": "x"}, allow="127.0.0.0/8")
    assert d.ok and d.attempts == 1
    assert receiver.hosts == [f"localhost:{receiver.port}"]  # sent to 127.0.0.1, named as given


def test_monitors_and_policies_with_private_targets_are_refused_when_created(tmp_path: Path) -> None:
    def context(allow: str) -> Context:
        return Context(
            Settings.from_env(
                {},
                tracking_uri=f"sqlite:///{tmp_path / 'l.db'}",
                artifacts_uri=str(tmp_path / "art"),
                webhook_allow=allow,
            )
        )

    strict = context("")
    monitors = SqlMonitoringStore(strict.engine, context=strict)
    reference = tmp_path / "ref.parquet"
    reference.write_bytes(b"")
    args: dict[str, Any] = {"reference": str(reference), "window": "1h"}
    with pytest.raises(InvalidInput, match=r"169\.254\.169\.254"):
        monitors.create_monitor(
            "m", "deployments:/d", config={"webhooks": ["http://169.254.169.254/x"]}, **args
        )
    # A name that does not resolve yet passes here; it is checked again at each delivery.
    monitors.create_monitor("m", "deployments:/d", config={"webhooks": ["https://hooks.example/x"]}, **args)
    policy = Policy("p", "churn", "churn-prod", "t.py:f", Gate(()), webhooks=("http://10.0.0.1/x",))
    with pytest.raises(InvalidInput, match="LOOPLINE_WEBHOOK_ALLOW"):
        SqlAutomationStore(strict).put_policy(policy)
    assert SqlAutomationStore(context("10.0.0.0/8")).put_policy(policy)[1]
    check_webhooks(["http://10.0.0.1/x"], "10.0.0.1")
