"""The Docker engine: connecting to it, and what a build says when it goes away mid-phase."""

from pathlib import Path

import docker
import docker.errors
import requests

from cpython_wasm.errors import BuildError, UserError
from cpython_wasm.paths import display_path

# What the Docker SDK raises when the engine stops answering mid-call.
ENGINE_GONE = (docker.errors.DockerException, requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
# Long phases print nothing for minutes; the engine connection must not time out.
ENGINE_TIMEOUT = 6 * 3600


def connect() -> docker.DockerClient:
    """A client for the Docker engine, or a clear error saying how to start one."""
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT)
        client.ping()
        return client
    except docker.errors.DockerException as error:
        raise UserError(
            f"No Docker engine answers ({error}). The builds run in containers and need one: run "
            f"`scripts/ensure-docker` (as root or with sudo; it installs Debian's docker.io if needed, starts "
            f"dockerd and waits for its socket), or point DOCKER_HOST at a running engine, then run again."
        ) from None


def engine_answers(client) -> bool:
    try:
        client.ping()
        return True
    except ENGINE_GONE:
        return False


def remove_container(container) -> bool:
    """Remove `container`, running or not; whether this call removed it. Another process may be removing it at
    the same moment (two builds starting at once both find a killed build's containers): gone already, or going,
    is not an error (the engine answers 404 or 409 "removal ... already in progress")."""
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as error:
        if error.status_code == 409 and "already in progress" in str(error):
            return False
        raise
    return True


def engine_gone(phase: str, log: Path) -> BuildError:
    return BuildError(
        f"The Docker engine stopped answering during phase {phase}; the phase did not finish and nothing it made "
        f"was kept (its log so far is {display_path(log)}). Outputs in dist/ and lockfiles/ are unchanged. Start "
        f"the engine again (`scripts/ensure-docker`) and run the same command: finished stages are reused, this one "
        f"starts over."
    )
