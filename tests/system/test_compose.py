"""docker-compose.yml runs MongoDB as a single-node replica set (issue 14, item 6): no Docker
engine here, so the file is parsed (PyYAML) and its parts are checked to agree: the mongod
command's ``--replSet`` name, the healthcheck that initiates that set with this service as
its member and is healthy only on a writable primary, and the service's ``MONGODB_URI``
(that host, ``replicaSet=`` that name); the image runs the ``uptime-monitor`` command."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import yaml

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_compose_mongo_is_a_replica_set_the_service_names() -> None:
    """The set name in ``--replSet``, in the healthcheck's ``rs.initiate`` and in the URI's
    ``replicaSet`` are one; the initiated member is ``<mongo service>:27017``, the host the
    URI connects to; the healthcheck exits 0 only on a writable primary, and the service
    waits for it (``service_healthy``)."""
    services = _compose()["services"]
    mongo_name = next(n for n, s in services.items() if str(s.get("image", "")).startswith("mongo:"))
    mongo = services[mongo_name]
    command = mongo["command"]
    set_name = command[command.index("--replSet") + 1]
    assert command[0] == "mongod" and "--bind_ip_all" in command

    test = mongo["healthcheck"]["test"]
    assert test[:2] == ["CMD", "mongosh"]
    script = test[test.index("--eval") + 1]
    initiate = re.search(r"rs\.initiate\(\{_id: '([^']+)', members: \[\{_id: 0, host: '([^']+)'\}\]\}\)",
                         script)
    assert initiate, script
    assert initiate[1] == set_name
    member = initiate[2]
    assert member == f"{mongo_name}:27017"
    assert "isWritablePrimary ? 0 : 1" in script  # healthy only once primary

    app = next(s for n, s in services.items() if n != mongo_name)
    uri = urlsplit(app["environment"]["MONGODB_URI"])
    assert uri.scheme == "mongodb" and uri.netloc == member
    assert parse_qs(uri.query)["replicaSet"] == [set_name]
    assert app["depends_on"][mongo_name]["condition"] == "service_healthy"


def test_image_runs_the_renamed_command() -> None:
    """The Dockerfile starts ``uptime-monitor serve`` (issue 14, item 7: the console script no
    longer shadows the system ``uptime``)."""
    cmd = [line for line in (REPO_ROOT / "Dockerfile").read_text().splitlines()
           if line.startswith("CMD")]
    assert cmd and '"uptime-monitor", "serve"' in cmd[-1]
