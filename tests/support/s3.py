"""moto's standalone S3 server, a real process the S3 artifact store talks HTTP to."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.processes import free_port, wait_for

from model_trainer.settings import Settings

# What boto3 reads from the environment; moto accepts any key pair.
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start_moto(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`moto_server` on a free port; its endpoint URL once it accepts connections."""
    port = free_port()
    program = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    with (workdir / "moto.log").open("wb") as log:
        process = subprocess.Popen(
            [program, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )

    def answers() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(answers, timeout=30, what="moto_server")
    return process, f"http://127.0.0.1:{port}"


def s3_env(env: dict[str, str], settings: Settings, root: Path) -> dict[str, str]:
    """A service process's environment for the S3 store of `settings`, with `root` as its own
    local cache (another machine's disk)."""
    location = settings["artifacts_s3"]
    assert location is not None and location["endpoint_url"] is not None
    root.mkdir(parents=True, exist_ok=True)
    return {
        **env,
        **S3_CREDENTIALS,
        "ARTIFACTS_URL": f"s3://{location['bucket']}/{location['prefix']}",
        "AWS_ENDPOINT_URL": location["endpoint_url"],
        "ARTIFACTS_ROOT": str(root),
    }
