"""Deploying (issue 16, item 8): the Dockerfile and deploy/, run here as far
as this machine allows.

- deploy/systemd/*.service: each unit's commands started as plain processes
  the way systemd starts them (a clean environment: its Environment= lines,
  deploy/env.example filled in as the EnvironmentFile, its WorkingDirectory,
  RuntimeDirectory and StateDirectory laid out under a temporary root), on the
  test database and a Redis of the test's own, in production mode: /readyz
  sees a worker on every queue, the scheduler and the cron; then each stops
  on SIGTERM as `systemctl stop` asks.
- deploy/nginx.conf, run by Debian's nginx with its upstream pointed at a
  running gunicorn (as deploy/README.md says for a single VM): HTTPS with a
  throwaway certificate, the redirect from HTTP, a live socket upgraded
  through it, and each client's own address reaching the app.
- deploy/env.example holds no secret: production refuses it as it is.
- compose.yaml is valid by the Compose specification and runs the same
  processes as the Procfile and the units; the Dockerfile passes hadolint.

Building and running the image needs a container runtime and base images:
deploy/README.md, "Trying it with podman".
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from ipaddress import ip_address
from pathlib import Path

import pytest
import requests
from ruamel.yaml import YAML

from app.config import ConfigError, ProductionConfig, new_vapid_keys
from app.services.common.tasks import QUEUES
from tests.conftest import free_port
from tests.live_support import SocketReader
from tests.process_support import ARTIFACTS, gunicorn, own_redis_server, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
APP_DIR = "/opt/beatmatchme"  # where deploy/README.md puts the code; its .venv is there too
VENV_BIN = Path(sys.executable).parent
SECRETS = ("SECRET_KEY", "DATABASE_URL", "POSTGRES_PASSWORD", "YOCO_SECRET_KEY", "YOCO_WEBHOOK_SECRET",
           "VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY")
OPTIONAL = ("SENTRY_DSN",)  # may stay empty in production


# -- the files, read ----------------------------------------------------------------------------------

def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections: each key's values in order (Environment= repeats)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in (raw.strip() for raw in path.read_text().splitlines()):
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines: what systemd's EnvironmentFile and compose's env_file both read the same way."""
    values = {}
    for line in (raw.strip() for raw in path.read_text().splitlines()):
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"not KEY=value: {line!r}"
            assert not value.startswith(("'", '"')), f"{key}: quotes are read differently by systemd and compose"
            values[key] = value
    return values


def filled_env_example(**site: str) -> dict[str, str]:
    """deploy/env.example with its empty values filled in, as a site would."""
    example = read_env_file(DEPLOY / "env.example")
    filled = {
        **example,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "YOCO_SECRET_KEY": "sk_test_" + secrets.token_hex(16),
        "YOCO_WEBHOOK_SECRET": "whsec_" + secrets.token_urlsafe(32),
        **new_vapid_keys(),
        "VAPID_SUBJECT": "mailto:ops@beatmatch.example",
        "PUBLIC_BASE_URL": "https://beatmatch.example",
        "SMTP_URL": "smtp://mailer:secret@127.0.0.1:1",
        **site,
    }
    assert set(filled) == set(example), "fill in only what the example names"
    assert not [k for k, v in filled.items() if not v and k not in OPTIONAL], "an empty value left"
    return filled


def procfile() -> dict[str, list[str]]:
    """The Procfile's commands without the wait for Redis, the venv's path or --url."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        args = shlex.split(command)
        if args[0] == "scripts/wait-for-redis.sh":
            args = args[1:]
        if "--url" in args:
            at = args.index("--url")
            del args[at:at + 2]
        commands[name] = program(args)
    return commands


def program(args: list[str]) -> list[str]:
    """A command as the same program wherever it lives: .venv/bin/rq, /opt/venv/bin/rq and rq alike."""
    name = os.path.basename(args[0])
    return ["python" if name == "python3" else name, *args[1:]]


def unit_named(suffix: str) -> dict[str, dict[str, list[str]]]:
    return read_unit(DEPLOY / "systemd" / f"beatmatchme-{suffix}.service")


def compose() -> dict:
    return YAML(typ="safe").load((DEPLOY / "compose.yaml").read_text())


# -- the units, run as plain processes -----------------------------------------------------------------

class Machine:
    """The VM of deploy/README.md, mapped onto this checkout: /opt/beatmatchme
    is the checkout and its .venv the one running the tests; /run and
    /var/lib and /var/cache lie under a temporary root (short: unix socket paths are short)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="bmm-vm-"))

    def path(self, value: str) -> str:
        if value.startswith(f"{APP_DIR}/.venv/bin/"):
            return str(VENV_BIN / value.rsplit("/", 1)[1])
        if value == APP_DIR or value.startswith(APP_DIR + "/"):
            return str(ROOT) + value[len(APP_DIR):]
        if value.startswith(("/run/", "/var/lib/", "/var/cache/")):
            return str(self.root) + value
        return value

    def command(self, line: str, env: dict[str, str]) -> list[str]:
        assert line[:1] not in "-@+!:", "no special-executable prefixes"
        expanded = re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), line)
        return [self.path(arg) for arg in shlex.split(expanded)]

    def service(self, unit: dict, settings: dict[str, str], overrides: dict[str, str]) -> "Service":
        """What systemd would run for `unit`: its directories made, its environment
        (Environment=, then the EnvironmentFile's `settings`, then the test's `overrides`)."""
        service = unit["Service"]
        env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
        for line in service.get("Environment", []):
            for assignment in shlex.split(line):
                key, _, value = assignment.partition("=")
                env[key] = self.path(value)
        assert service["EnvironmentFile"] == ["/etc/beatmatchme/env"]
        env.update(settings)
        env.update(overrides)
        for kind, base in (("RuntimeDirectory", "/run"), ("StateDirectory", "/var/lib"), ("CacheDirectory", "/var/cache")):
            for name in " ".join(service.get(kind, [])).split():
                Path(self.path(f"{base}/{name}")).mkdir(parents=True, exist_ok=True)
        return Service(self, unit, env)


class Service:
    def __init__(self, machine: Machine, unit: dict, env: dict[str, str]):
        self.unit, self.env = unit["Service"], env
        self.cwd = machine.path(self.unit["WorkingDirectory"][0])
        self.before = [machine.command(line, env) for line in self.unit.get("ExecStartPre", [])]
        (start,) = self.unit["ExecStart"]
        self.start_command = machine.command(start, env)
        self.proc: subprocess.Popen | None = None

    def start(self, log_name: str) -> "Service":
        ARTIFACTS.mkdir(exist_ok=True)
        with open(ARTIFACTS / f"{log_name}.log", "a") as log:
            for command in self.before:
                subprocess.run(command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                               check=True, timeout=60)
            self.proc = subprocess.Popen(self.start_command, cwd=self.cwd, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self) -> None:
        """`systemctl stop`: SIGTERM to the main process (KillMode=mixed)..."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def stopped(self) -> int:
        """... and its exit awaited for TimeoutStopSec: the exit code."""
        return self.proc.wait(timeout=int(self.unit.get("TimeoutStopSec", ["90"])[0]))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.mark.timeout(120)
def test_the_units_run_web_both_workers_and_cron_until_readyz_is_ok(app, database_url, tmp_path):
    """The four units on one machine, production settings from the example:
    web answers, /readyz counts two workers on payments and one on default
    and imports, the scheduler and the cron; each stops cleanly on SIGTERM."""
    assert {unit.name for unit in UNITS} == {"beatmatchme-web.service", "beatmatchme-worker.service",
                                             "beatmatchme-payments-worker.service", "beatmatchme-cron.service"}
    machine = Machine()
    services: list[Service] = []
    try:
        with own_redis_server(tmp_path) as redis_server:
            port = free_port()
            settings = filled_env_example(DATABASE_URL=database_url, REDIS_URL=redis_server.url)
            # A small web node for a test; the machine's own address and port.
            overrides = {"BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1", "WEB_THREADS": "8"}
            # The web unit last: its migration (ExecStartPre) blocks, the others start meanwhile.
            for unit in sorted(UNITS, key=lambda unit: "ExecStartPre" in read_unit(unit)["Service"]):
                parsed = read_unit(unit)
                assert (parsed["Service"]["User"], parsed["Service"]["Restart"]) == (["beatmatchme"], ["always"])
                services.append(machine.service(parsed, settings, overrides).start(f"unit-{unit.stem}"))

            base = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                try:
                    return requests.get(f"{base}/readyz", timeout=10).json()["status"] == "ok"
                except requests.RequestException:  # still starting
                    assert all(service.proc.poll() is None for service in services), "a unit's process ended"
                    return False

            wait_until(ready, 60, "the units never made /readyz ok", every=0.2)
            body = requests.get(f"{base}/readyz", timeout=2).json()
            assert body["background"]["workers"] == {"payments": 2, "default": 1, "imports": 1}
            assert body["background"]["scheduler"] == {name: True for name in QUEUES}
            assert body["background"]["cron"] == 1
            # Production's pages (HSTS) from the unit's gunicorn, its control
            # socket in the unit's RuntimeDirectory.
            assert "Strict-Transport-Security" in requests.get(f"{base}/healthz", timeout=2).headers
            assert (machine.root / "run/beatmatchme-web/gunicorn.ctl").is_socket()

            for service in services:  # all at once, as at a shutdown
                service.stop()
            codes = {service.start_command[-1]: service.stopped() for service in services}
            assert codes == {"wsgi:app": 0, "imports": 0, "payments": 0, "jobs.cron": 0}, codes
    finally:
        for service in services:
            service.kill()
        shutil.rmtree(machine.root, ignore_errors=True)


def test_the_units_run_the_procfiles_commands_from_the_virtualenv():
    assert program(shlex.split(unit_named("web")["Service"]["ExecStart"][0])) == procfile()["web"]
    assert program(shlex.split(unit_named("worker")["Service"]["ExecStart"][0])) == procfile()["worker"]
    assert program(shlex.split(unit_named("payments-worker")["Service"]["ExecStart"][0])) == procfile()["payments"]
    assert program(shlex.split(unit_named("cron")["Service"]["ExecStart"][0])) == procfile()["cron"]
    assert unit_named("web")["Service"]["ExecStartPre"] == [f"{APP_DIR}/.venv/bin/flask --app wsgi db upgrade"]
    assert "TRUSTED_PROXY_HOPS=1" in " ".join(unit_named("web")["Service"]["Environment"])


# -- nginx in front of gunicorn --------------------------------------------------------------------

def throwaway_certificate(directory: Path) -> Path:
    """A self-signed certificate for 127.0.0.1, as deploy/README.md's trial
    pair: fullchain.pem and privkey.pem in `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return directory / "fullchain.pem"


def nginx_conf_for(upstream_port: int, http_port: int, https_port: int, tls: Path, acme: Path) -> str:
    """deploy/nginx.conf with the single VM's upstream (deploy/README.md) and
    this test's ports and certificate."""
    text = (DEPLOY / "nginx.conf").read_text()
    edits = [
        (r"(upstream beatmatchme \{\n)(\s*server web\d+:8000[^;]*;\n)+", rf"\1        server 127.0.0.1:{upstream_port};\n"),
        (r"listen \[::\]:\d+[^;]*;\n", ""),
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
        (r"/etc/nginx/tls/", f"{tls}/"),
        (r"/var/www/acme", str(acme)),
    ]
    for pattern, replacement in edits:
        text, count = re.subn(pattern, replacement, text)
        assert count, f"deploy/nginx.conf no longer has {pattern!r}"
    return text


@pytest.fixture
def nginx_in_front(tmp_path):
    """Debian's nginx with deploy/nginx.conf in front of a gunicorn that
    trusts one proxy and lets one live socket per client address."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    logs = [ARTIFACTS / "nginx.log", ARTIFACTS / "gunicorn-behind-nginx.log"]
    with _printed_on_failure(logs), gunicorn(logs[1], workers=1, threads=16,
                                             TRUSTED_PROXY_HOPS="1", LIVE_SOCKETS_PER_ADDRESS="1") as upstream:
        http_port, https_port = free_port(), free_port()
        certificate = throwaway_certificate(tmp_path / "tls")
        (tmp_path / "acme").mkdir()
        conf = tmp_path / "nginx.conf"
        conf.write_text(nginx_conf_for(int(upstream.rsplit(":", 1)[1]), http_port, https_port,
                                       tmp_path / "tls", tmp_path / "acme"))
        # Workers as root: the test's temporary directories are private to it.
        command = [nginx, "-p", str(tmp_path), "-c", str(conf), "-e", "stderr",
                   "-g", f"daemon off; pid {tmp_path / 'nginx.pid'}; user root;"]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=20)
        assert checked.returncode == 0, checked.stderr
        with open(logs[0], "a") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            https = f"https://127.0.0.1:{https_port}"
            wait_until(lambda: _answers(f"{https}/healthz", certificate), 15, "nginx never answered")
            yield {"https": https, "http": f"http://127.0.0.1:{http_port}", "certificate": certificate}
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def _printed_on_failure(logs: list[Path]):
    """What these logs gained during the test, printed when it ends: pytest
    shows a test's output only when it fails, and CI keeps no artifacts."""
    ARTIFACTS.mkdir(exist_ok=True)
    offsets = {log: log.stat().st_size if log.exists() else 0 for log in logs}
    try:
        yield
    finally:
        for log, offset in offsets.items():
            if log.exists():
                with open(log, errors="replace") as text:
                    text.seek(offset)
                    print(f"--- {log.name} during the test ---\n{text.read()[-20000:]}")


def _answers(url: str, certificate: Path) -> bool:
    try:
        return requests.get(url, verify=str(certificate), timeout=1).ok
    except requests.ConnectionError:
        return False


@pytest.mark.timeout(60)
def test_nginx_serves_the_app_over_https_and_upgrades_live_sockets(nginx_in_front, night):
    https, certificate = nginx_in_front["https"], str(nginx_in_front["certificate"])
    event = night.event

    # Plain HTTP is sent to HTTPS.
    moved = requests.get(f"{nginx_in_front['http']}/e/{event.public_id}", allow_redirects=False, timeout=5)
    assert moved.status_code == 301
    assert moved.headers["Location"] == f"https://127.0.0.1/e/{event.public_id}"

    # The fan's event page through TLS, compressed by the app (nginx's gzip is
    # off), its request id nginx's, not one the client made up.
    page = requests.get(f"{https}/e/{event.public_id}", verify=certificate, timeout=10,
                        headers={"Accept-Encoding": "br", "X-Request-ID": "made-up"})
    assert page.status_code == 200
    assert event.name in page.text
    assert page.headers["Content-Encoding"] == "br"
    assert re.fullmatch(r"[0-9a-f]{32}", page.headers["X-Request-ID"])

    # The live socket, upgraded through nginx: the snapshot arrives.
    tls = ssl.create_default_context(cafile=certificate)
    socket_url = f"wss://127.0.0.1:{https.rsplit(':', 1)[1]}/live/events/{event.public_id}"
    origin = {"Origin": https}
    first = SocketReader(socket_url, origin, ssl=tls)
    second = third = None
    try:
        snapshot = first.wait_for(lambda message: True, timeout=10)
        assert any(title in snapshot for title in night.requests)

        # Each client is known by its own address (TRUSTED_PROXY_HOPS=1), not
        # nginx's: with one socket allowed per address, a fan at another
        # address gets one, a second socket from the first address is refused.
        second = SocketReader(socket_url, origin, ssl=tls, source_address=("127.0.0.2", 0))
        assert any(title in second.wait_for(lambda message: True, timeout=10) for title in night.requests)
        third = SocketReader(socket_url, origin, ssl=tls)
        wait_until(lambda: third.closed_with is not None, 10, "the second socket of one address stayed open")
        assert third.closed_with == 1013
    finally:
        for reader in (first, second, third):
            if reader is not None:
                reader.close()


# -- the example settings, compose and the image ---------------------------------------------------

def test_the_example_settings_hold_no_secret_and_production_refuses_them_unfilled(monkeypatch):
    example = read_env_file(DEPLOY / "env.example")
    assert {key: example[key] for key in SECRETS} == {key: "" for key in SECRETS}
    assert example["APP_ENV"] == "production" and example["PAYMENT_PROVIDER"] == "yoco"
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "README.md").read_text()))
    assert set(example) - documented == {"POSTGRES_PASSWORD"}  # compose's own; every other one is in the table
    for key, value in example.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError):
        ProductionConfig().validate()
    for key, value in filled_env_example(DATABASE_URL="postgresql+psycopg://bmm:pw@db/bmm").items():
        monkeypatch.setenv(key, value)
    ProductionConfig().validate()  # filled in, it starts


def test_compose_is_valid_and_runs_the_procfiles_processes_behind_nginx():
    checked = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                              str(DEPLOY / "compose.yaml")], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    services = compose()["services"]
    image = dockerfile_command()
    assert program(image) == procfile()["web"]
    assert {name for name, s in services.items() if s.get("image") == "beatmatchme:latest"} == {
        "web1", "web2", "worker", "payments-worker", "cron", "migrate"}
    for name in ("web1", "web2"):
        assert "entrypoint" not in services[name]  # the image's: gunicorn
        assert services[name]["environment"]["TRUSTED_PROXY_HOPS"] == "1"
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert program(services["worker"]["entrypoint"]) == procfile()["worker"]
    assert program(services["payments-worker"]["entrypoint"]) == procfile()["payments"]
    assert program(services["cron"]["entrypoint"]) == procfile()["cron"]
    assert services["migrate"]["entrypoint"] == ["flask", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("worker", "payments-worker", "cron"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    # Persistence: PostgreSQL's data and Redis's append-only file on volumes.
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert services["redis"]["command"][:3] == ["redis-server", "--appendonly", "yes"]
    # Web nodes and workers share the uploads and reports.
    for name in ("web1", "web2", "worker", "payments-worker"):
        assert "app-data:/var/lib/beatmatchme" in services[name]["volumes"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]
    assert set(services["nginx"]["depends_on"]) == {"web1", "web2"}
    assert re.search(r"server web1:8000.*\n\s*server web2:8000", (DEPLOY / "nginx.conf").read_text())


def dockerfile_command() -> list[str]:
    """The image's ENTRYPOINT followed by its CMD."""
    text = (ROOT / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M).group(1))
    return entrypoint + cmd


def test_the_dockerfile_passes_hadolint_and_runs_as_a_user_with_the_libraries_of_ensure_system():
    linted = subprocess.run([str(VENV_BIN / "hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True,
                            timeout=60)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    text = (ROOT / "Dockerfile").read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert final_stage.startswith("debian:bookworm-slim\n")
    assert re.findall(r"^USER (.+)$", final_stage, re.M) == ["10001:10001"]
    assert re.findall(r"-r (\S+)", text) == ["/tmp/requirements.txt"]  # the runtime pins alone, no dev tools
    assert re.findall(r"^COPY (\S+) /tmp/requirements.txt$", text, re.M) == ["requirements.txt"]
    # The run-time libraries scripts/ensure-system.sh installs for `make run` (WeasyPrint's).
    ensure = (ROOT / "scripts" / "ensure-system.sh").read_text()
    packages = re.findall(r"^want_lib \S+ (\S+)$", ensure, re.M) + ["fonts-dejavu-core"]
    assert len(packages) == 4 and all(f" {package} " in final_stage for package in packages)
    # Nothing but what runs goes into the build context (no .env, instance/, .venv).
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert rules[0] == "*" and not [rule for rule in rules if rule.startswith("!") and ("env" in rule or "instance" in rule)]
