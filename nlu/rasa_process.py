"""Running Rasa from its own Python 3.10 venv: train when the inputs changed, serve, wait until healthy, stop."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

NLU_DIR = Path(__file__).resolve().parent
MODELS_DIR = NLU_DIR / "models"
MODEL_NAME = "rahnuma"
MODEL_FILE = MODELS_DIR / f"{MODEL_NAME}.tar.gz"
FINGERPRINT_FILE = MODELS_DIR / f"{MODEL_NAME}.fingerprint"


class RasaSetupError(RuntimeError):
    """Rasa is missing, failed to train or did not come up; the message says what to do."""


def training_inputs() -> list[Path]:
    return [NLU_DIR / "config.yml", NLU_DIR / "domain.yml", *sorted((NLU_DIR / "data").glob("*.yml"))]


def fingerprint() -> str:
    digest = hashlib.sha256()
    for path in training_inputs():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def model_is_current() -> bool:
    return MODEL_FILE.exists() and FINGERPRINT_FILE.exists() and FINGERPRINT_FILE.read_text().strip() == fingerprint()


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONWARNINGS="ignore",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
    )
    return env


def _require(rasa: Path) -> None:
    if not rasa.exists():
        raise RasaSetupError(
            f"Rasa is not installed at {rasa}; run `make install` (it creates .venv-rasa with Python 3.10)."
        )


def train(rasa: Path, *, force: bool = False) -> bool:
    """Train the NLU model unless the config, domain and data are unchanged; True when it trained."""
    if not force and model_is_current():
        return False
    _require(rasa)
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    expected = fingerprint()
    started = time.monotonic()
    command = [
        str(rasa), "train", "nlu", "--config", str(NLU_DIR / "config.yml"), "--domain", str(NLU_DIR / "domain.yml"),
        "--nlu", str(NLU_DIR / "data"), "--out", str(MODELS_DIR), "--fixed-model-name", MODEL_NAME,
    ]  # fmt: skip
    result = subprocess.run(command, env=rasa_env(), check=False)
    if result.returncode != 0 or not MODEL_FILE.exists():
        raise RasaSetupError(f"`rasa train nlu` failed with exit code {result.returncode}")
    FINGERPRINT_FILE.write_text(expected + "\n")
    print(f"Trained the NLU model in {time.monotonic() - started:.0f} s -> {MODEL_FILE}", file=sys.stderr)
    return True


def serve_command(rasa: Path, rasa_url: str, *, token: str | None = None) -> list[str]:
    parts = urlsplit(rasa_url)
    command = [
        str(rasa), "run", "--enable-api", "--model", str(MODEL_FILE),
        "--interface", parts.hostname or "127.0.0.1", "--port", str(parts.port or 5005),
    ]  # fmt: skip
    if token:
        command += ["--auth-token", token]
    return command


def start_background(rasa: Path, rasa_url: str, *, token: str | None = None, log_file: Path) -> subprocess.Popen[bytes]:
    """Start the server in its own process group so it can be stopped with everything it spawned."""
    _require(rasa)
    if not MODEL_FILE.exists():
        raise RasaSetupError("no trained model; run `rahnuma nlu train` first")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            serve_command(rasa, rasa_url, token=token), stdout=log, stderr=subprocess.STDOUT, env=rasa_env(),
            start_new_session=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def is_healthy(rasa_url: str, *, token: str | None = None) -> bool:
    try:
        response = httpx.get(rasa_url.rstrip("/") + "/status", params={"token": token} if token else {}, timeout=2)
        return response.status_code == 200 and bool(response.json().get("model_file"))
    except (httpx.HTTPError, ValueError):
        return False


def wait_until_healthy(
    rasa_url: str,
    *,
    token: str | None = None,
    timeout: float = 240,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_healthy(rasa_url, token=token):
            return
        if process is not None and process.poll() is not None:
            raise RasaSetupError(f"the Rasa server exited with code {process.returncode}; see its log")
        time.sleep(0.5)
    raise RasaSetupError(f"Rasa did not become healthy at {rasa_url} within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], *, grace: float = 15) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL after the grace period."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
