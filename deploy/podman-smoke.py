"""Run deploy/compose.yaml with plain podman, check it through nginx, stop it.

For a machine with podman but no compose that honours the file's conditions
(Debian 12's podman 4.3 and podman-compose start a service before the one it
depends on is healthy or has finished). It reads compose.yaml (its anchors
and ${VAR} interpolation from deploy/.env), starts the services in
dependency order, waiting for each `service_healthy` (the service's own
healthcheck, run with `podman exec`) and `service_completed_successfully`
(`podman wait`), then checks, over HTTPS through nginx with the certificate
in deploy/tls/:
  - /readyz: the database and Redis answer, a worker on every queue, the
    scheduler and the cron (status "ok");
  - a live socket is upgraded (101) through nginx to a web node;
  - the app's volume is shared by web nodes and workers, writable by the
    app's user; Redis keeps its data through a restart;
  - both web nodes answered (nginx spreads the requests over them).
Then it removes the containers (and with --volumes, the volumes).

    .venv/bin/python deploy/podman-smoke.py [--image redis=localhost/my-redis ...] [--volumes]

--image replaces a service's image (for a machine that cannot pull from
Docker Hub: images of its own with the same commands). Build the app's image
first: podman build -t beatmatchme:latest .
"""
from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import subprocess
import sys
import time
from pathlib import Path

import requests
from ruamel.yaml import YAML

DEPLOY = Path(__file__).resolve().parent
PREFIX = "bmm-smoke"


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def interpolate(value, variables: dict[str, str]):
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, through lists and maps."""
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def one(match):
        name, op, arg = match.group(1), match.group(2), match.group(3)
        found = variables.get(name, "")
        if op == ":?" and not found:
            sys.exit(f"{name}: {arg}")
        return found or (arg if op == ":-" else "")

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def podman(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], check=check, text=True,
                          stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None)


def run_args(name: str, service: dict, images: dict[str, str]) -> list[str]:
    args = ["run", "-d", "--name", f"{PREFIX}-{name}", "--network", PREFIX, "--network-alias", name]
    if "env_file" in service:
        args += ["--env-file", str(DEPLOY / service["env_file"])]
    for key, value in (service.get("environment") or {}).items():
        args += ["-e", f"{key}={value}"]
    for volume in service.get("volumes", []):
        source, _, rest = volume.partition(":")
        source = str((DEPLOY / source).resolve()) if source.startswith(".") else f"{PREFIX}_{source}"
        args += ["-v", f"{source}:{rest}"]
    for port in service.get("ports", []):
        args += ["-p", port]
    if "entrypoint" in service:
        args += ["--entrypoint", json.dumps(service["entrypoint"])]
    args.append(images.get(name, service["image"]))
    args += service.get("command") or []
    return args


def healthy(name: str, service: dict) -> bool:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return podman("exec", f"{PREFIX}-{name}", *test[1:], check=False).returncode == 0


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"timed out: {what}")
        time.sleep(1)


def up(services: dict, images: dict[str, str]) -> None:
    started: set[str] = set()

    def start(name: str) -> None:
        if name in started:
            return
        for dependency, rule in (services[name].get("depends_on") or {}).items():
            start(dependency)
            condition = rule.get("condition", "service_started")
            if condition == "service_healthy":
                wait_for(lambda: healthy(dependency, services[dependency]), 120, f"{dependency} healthy")
            elif condition == "service_completed_successfully":
                code = podman("wait", f"{PREFIX}-{dependency}").stdout.strip()
                if code != "0":
                    print(podman("logs", f"{PREFIX}-{dependency}").stdout)
                    sys.exit(f"{dependency} exited with {code}")
        print(f"starting {name}", flush=True)
        podman(*run_args(name, services[name], images))
        started.add(name)

    for name in services:
        start(name)


def check(services: dict) -> None:
    https = "https://127.0.0.1:" + next(p for p in services["nginx"]["ports"] if p.endswith(":443")).split(":")[0]
    certificate = str(DEPLOY / "tls" / "fullchain.pem")

    def ready() -> bool:
        try:
            body = requests.get(f"{https}/readyz", verify=certificate, timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        print(f"/readyz: {body.get('status')} {body.get('degraded', body.get('failing'))}", flush=True)
        return body.get("status") == "ok"

    wait_for(ready, 120, "/readyz ok through nginx")
    body = requests.get(f"{https}/readyz", verify=certificate, timeout=5).json()
    print("background:", json.dumps(body["background"]))
    assert body["background"]["workers"] == {"payments": 2, "default": 1, "imports": 1}, body
    assert body["background"]["cron"] == 1, body

    from websockets.sync.client import connect
    from websockets.exceptions import ConnectionClosed

    tls = ssl.create_default_context(cafile=certificate)
    origin = https.removesuffix(":443")  # as a browser sends it (and the Host header it is compared with)
    with connect(f"wss://{origin.removeprefix('https://')}/live/events/none", ssl=tls,
                 additional_headers={"Origin": origin}, open_timeout=10) as ws:
        print(f"live socket upgraded through nginx: {ws.response.status_code}")
        try:
            ws.recv(timeout=10)
            sys.exit("the socket of an event that does not exist stayed open")
        except ConnectionClosed as closed:
            # The app's own answer for an event it does not have (the database is empty).
            print(f"  closed by the app: {closed.rcvd.code} {closed.rcvd.reason!r}")
            assert (closed.rcvd.code, closed.rcvd.reason) == (1008, "no such event"), closed.rcvd

    # The app's volume: written by a web node as the app's user, read by the worker.
    podman("exec", f"{PREFIX}-web1", "sh", "-c", "id -u > /var/lib/beatmatchme/uploads/smoke.txt")
    written = podman("exec", f"{PREFIX}-worker", "cat", "/var/lib/beatmatchme/uploads/smoke.txt").stdout.strip()
    print(f"app-data written by uid {written} in web1, read in worker")
    assert written == "10001", written

    # Redis keeps what it held through a restart (the append-only file on its volume).
    podman("exec", f"{PREFIX}-redis", "redis-cli", "set", "bmm:smoke", "kept")
    podman("restart", f"{PREFIX}-redis")
    wait_for(lambda: healthy("redis", services["redis"]), 60, "redis healthy again")
    kept = podman("exec", f"{PREFIX}-redis", "redis-cli", "get", "bmm:smoke").stdout.strip()
    print(f"redis after a restart: bmm:smoke={kept}")
    assert kept == "kept", kept

    for _ in range(20):
        requests.get(f"{https}/healthz", verify=certificate, timeout=5)
    for name in ("web1", "web2"):
        lines = podman("logs", f"{PREFIX}-{name}").stdout.count('"path": "/healthz"')
        print(f"{name} answered {lines} /healthz requests")
        assert lines > 0, f"{name} got no request from nginx"


def down(services: dict, volumes: bool) -> None:
    for name in reversed(list(services)):
        podman("rm", "-f", "-t", "20", f"{PREFIX}-{name}", check=False)
    if volumes:
        for volume in compose_volumes():
            podman("volume", "rm", "-f", f"{PREFIX}_{volume}", check=False)
    podman("network", "rm", "-f", PREFIX, check=False)


def compose_volumes() -> list[str]:
    return list(YAML(typ="safe").load((DEPLOY / "compose.yaml").read_text()).get("volumes", {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", action="append", default=[], help="service=image")
    parser.add_argument("--volumes", action="store_true", help="remove the volumes too at the end")
    parser.add_argument("--keep", action="store_true", help="leave it running")
    options = parser.parse_args()
    images = dict(item.split("=", 1) for item in options.image)
    variables = {**env_file(DEPLOY / ".env"), **os.environ}
    services = interpolate(YAML(typ="safe").load((DEPLOY / "compose.yaml").read_text())["services"], variables)
    podman("network", "create", PREFIX, check=False)
    try:
        up(services, images)
        check(services)
        print("OK")
    finally:
        if not options.keep:
            down(services, options.volumes)


if __name__ == "__main__":
    main()
