"""compose.yaml and .env.example read as the tests need them: validated by docker-compose."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.source_code import ROOT

COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
# ${NAME:?message}: compose refuses to go on without NAME (set and not empty).
REQUIRED = re.compile(r"\$\{([A-Z_][A-Z0-9_]*):\?[^}]+\}")
# Any interpolation at all: ${NAME}, ${NAME:-default}, ${NAME:?message}; $$ escapes.
INTERPOLATED = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)")
TIMEOUT = 60  # seconds; docker-compose config takes ~1 s


def example_env() -> dict[str, str]:
    """The variables .env.example sets (NAME=value lines), in file order."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def compose_config(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` offline, with ``env`` as the only variables it may read."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    command = shutil.which("docker-compose")
    assert command, "docker-compose is missing (Debian package docker-compose; see .ci/run)"
    return subprocess.run(
        [command, "--env-file", str(env_file), "-f", str(COMPOSE), "config"],
        # Only what the tool needs to run: no variable of the machine leaks into the check.
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def parsed(text: str) -> dict[str, Any]:
    """A YAML document as a dict."""
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def unescaped(script: str) -> str:
    """A script as the container's shell gets it: compose turns ``$$`` into ``$``."""
    return script.replace("$$", "$")
