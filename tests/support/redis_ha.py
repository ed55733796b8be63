"""Redis as operators make it highly available, as real processes: a TLS-only redis-server with
a throwaway CA (openssl), and a Sentinel group (primary, replica, redis-sentinel)."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from tests.support.processes import free_port, stop, wait_for

from platform_workers.redis_server import redis_server_binary

PASSWORD = "s3cret-pw"
SERVICE = "mymaster"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> None:
    """ca.crt, and server.crt/server.key for 127.0.0.1 signed by it (EC keys: fast to make)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca = ["-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=model-trainer test CA"]
    _openssl("req", "-x509", *key, *ca, "-days", "1", cwd=directory)
    server = ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]
    _openssl("req", *key, *server, cwd=directory)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    sign = ["-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"]
    sign += ["-out", "server.crt", "-days", "1", "-extfile", "san.ext"]
    _openssl("x509", "-req", *sign, cwd=directory)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_tls_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server that speaks only TLS and wants PASSWORD, and the `rediss://` URL that
    verifies its certificate against the throwaway CA."""
    certificates = workdir / "tls"
    make_certificates(certificates)
    port = free_port()
    command = [redis_server_binary(), "--port", "0", "--tls-port", str(port)]
    command += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    command += ["--tls-cert-file", str(certificates / "server.crt")]
    command += ["--tls-key-file", str(certificates / "server.key")]
    command += ["--tls-ca-cert-file", str(certificates / "ca.crt")]
    command += ["--tls-auth-clients", "no", "--requirepass", PASSWORD]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    wait_for(lambda: _listening(port), timeout=10, what="redis-server (TLS)")
    query = f"ssl_ca_certs={certificates / 'ca.crt'}&ssl_cert_reqs=required"
    return process, f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?{query}"


@dataclass
class SentinelGroup:
    """A primary, its replica and one sentinel (quorum 1) watching them as SERVICE."""

    primary_port: int
    replica_port: int
    sentinel_port: int
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis+sentinel://:{PASSWORD}@127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def sentinel(self) -> Redis:
        return Redis(port=self.sentinel_port, socket_timeout=5)

    def primary_address(self) -> int:
        """The port the sentinel names as the primary now."""
        with self.sentinel() as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def fail_over(self) -> None:
        """SENTINEL FAILOVER, then kill the old primary: once the replica is promoted, nothing
        may still talk to the old one."""
        old = self.primary_port
        with self.sentinel() as sentinel:
            sentinel.sentinel_failover(SERVICE)
        wait_for(lambda: self.primary_address() != old, timeout=20, what="a new primary")
        self.primary_port, self.replica_port = self.replica_port, old
        wait_for(lambda: _role(self.primary_port) == "master", timeout=20, what="promotion")
        stop(self.processes.pop(old))

    def stop(self) -> None:
        for process in self.processes.values():
            stop(process)


def _role(port: int) -> str:
    try:
        with Redis(port=port, password=PASSWORD, socket_timeout=2) as client:
            return str(client.info("replication")["role"])
    except RedisConnectionError:
        return "unreachable"


def _redis(workdir: Path, port: int, *replicaof: str) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    command = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    command += ["--requirepass", PASSWORD, "--masterauth", PASSWORD, *replicaof]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    wait_for(lambda: _listening(port), timeout=10, what=f"redis-server on {port}")
    return process


def start_sentinel_group(workdir: Path) -> SentinelGroup:
    """Returns once the replica is in sync and the sentinel knows it (so it can promote it)."""
    group = SentinelGroup(free_port(), free_port(), free_port())
    group.processes[group.primary_port] = _redis(workdir / "primary", group.primary_port)
    group.processes[group.replica_port] = _redis(
        workdir / "replica", group.replica_port, "--replicaof", "127.0.0.1", str(group.primary_port)
    )
    config = workdir / "sentinel.conf"
    config.write_text(
        f"port {group.sentinel_port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {group.primary_port} 1\n"
        f"sentinel auth-pass {SERVICE} {PASSWORD}\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 5000\n"
    )
    group.processes[group.sentinel_port] = subprocess.Popen(
        ["redis-sentinel", str(config)], stdout=subprocess.DEVNULL
    )
    wait_for(lambda: _listening(group.sentinel_port), timeout=10, what="redis-sentinel")
    wait_for(lambda: _replica_known(group), timeout=30, what="the sentinel to see the replica")
    return group


def _replica_known(group: SentinelGroup) -> bool:
    with group.sentinel() as sentinel:
        replicas = sentinel.sentinel_slaves(SERVICE)
    return any(
        replica.get("flags") == "slave" and replica.get("master-link-status") == "ok"
        for replica in replicas
    )
