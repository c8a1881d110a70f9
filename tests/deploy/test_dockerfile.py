"""The Dockerfile, read as instructions (nothing here can build images): how it installs,
who it runs as, and that it says how to check it."""

from __future__ import annotations

import json
import re
import shlex

from tests.deploy.compose_file import DOCKERFILE


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _final_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage: the image that runs."""
    steps = _instructions()
    start = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[start:]


def test_the_image_is_python_311_slim_with_the_report_font() -> None:
    stage = _final_stage()
    assert stage[0] == ("FROM", "python:3.11-slim")
    assert any(w == "RUN" and "fonts-dejavu-core" in arg for w, arg in stage)


def test_the_project_is_installed_not_editable() -> None:
    """Every pip install is a regular one, and one of them installs the project's wheel."""
    installs = [arg for word, arg in _instructions() if word == "RUN" and "pip install" in arg]
    for command in installs:
        for part in command.split("&&"):
            words = shlex.split(part)
            assert "-e" not in words and "--editable" not in words, part
    assert any(re.search(r"pip install (--no-deps )?/wheels/\*\.whl", c) for c in installs)
    built = [arg for word, arg in _instructions() if word == "RUN" and "pip wheel" in arg]
    assert built and all(arg.rstrip().endswith(" .") for arg in built)


def test_it_runs_as_a_user_other_than_root() -> None:
    users = [arg for word, arg in _final_stage() if word == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_it_has_a_healthcheck_and_the_command_line_as_entrypoint() -> None:
    stage = _final_stage()
    checks = [arg for word, arg in stage if word == "HEALTHCHECK"]
    assert len(checks) == 1 and "CMD" in checks[0] and "/api/v1/health" in checks[0]
    (entrypoint,) = [json.loads(arg) for word, arg in stage if word == "ENTRYPOINT"]
    assert entrypoint == ["precisionpulse"]
    (command,) = [json.loads(arg) for word, arg in stage if word == "CMD"]
    assert command[0] == "serve"
