"""Running Rasa from its own Python 3.10 venv: train when the inputs changed, serve, wait until healthy, stop."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def model_cache_dir() -> Path:
    """Trained models by fingerprint, outside the checkout, so a fresh clone with unchanged data trains nothing."""
    configured = os.environ.get("RAHNUMA_MODEL_CACHE", "").strip()
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "rahnuma" / "models"


def _cached_model(expected: str) -> Path:
    return model_cache_dir() / f"{expected}.tar.gz"


def _restore_from_cache(expected: str) -> bool:
    cached = _cached_model(expected)
    if not cached.is_file():
        return False
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    partial = MODEL_FILE.with_suffix(".partial")
    shutil.copyfile(cached, partial)
    partial.replace(MODEL_FILE)
    FINGERPRINT_FILE.write_text(expected + "\n")
    print(f"Reused the NLU model trained earlier on the same data ({cached})", file=sys.stderr)
    return True


def _store_in_cache(expected: str) -> None:
    try:
        cache = model_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f".{expected}.partial"
        shutil.copyfile(MODEL_FILE, partial)
        partial.replace(_cached_model(expected))
    except OSError as exc:  # a cache is a convenience: an unwritable one costs a retrain next time, nothing else
        print(f"Could not cache the trained model: {exc}", file=sys.stderr)


def train(rasa: Path, *, force: bool = False) -> bool:
    """Train the NLU model unless the config, domain and data are unchanged (or a model trained on exactly them
    is in the cache); True when it trained."""
    if not force and model_is_current():
        return False
    if not force and _restore_from_cache(fingerprint()):
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
    _store_in_cache(expected)
    print(f"Trained the NLU model in {time.monotonic() - started:.0f} s -> {MODEL_FILE}", file=sys.stderr)
    return True


# Rasa takes its auth token only as `--auth-token` on the command line, where `ps` shows it to every user of the
# machine. This launcher, run by Rasa's own Python, adds it to sys.argv inside the process from an environment
# variable (readable only by the same user), so the visible command line carries no secret.
_TOKEN_VARIABLE = "RAHNUMA_RASA_AUTH_TOKEN"
_LAUNCHER = (
    "import os, sys; token = os.environ.pop('RAHNUMA_RASA_AUTH_TOKEN', ''); "
    "sys.argv = ['rasa', *sys.argv[1:], *(['--auth-token', token] if token else [])]; "
    "from rasa.__main__ import main; main()"
)


def serve_command(rasa: Path, rasa_url: str, *, model: Path = MODEL_FILE) -> list[str]:
    """The command line that serves the model at rasa_url (the token, if any, travels in the environment)."""
    parts = urlsplit(rasa_url)
    return [
        str(rasa.with_name("python")), "-c", _LAUNCHER, "run", "--enable-api", "--model", str(model),
        "--interface", parts.hostname or "127.0.0.1", "--port", str(parts.port or 5005),
    ]  # fmt: skip


def serve_env(token: str | None) -> dict[str, str]:
    env = rasa_env()
    env.pop(_TOKEN_VARIABLE, None)
    if token:
        env[_TOKEN_VARIABLE] = token
    return env


def start_background(
    rasa: Path, rasa_url: str, *, token: str | None = None, log_file: Path, model: Path = MODEL_FILE
) -> subprocess.Popen[bytes]:
    """Start the server in its own process group so it can be stopped with everything it spawned."""
    _require(rasa)
    if not model.exists():
        raise RasaSetupError("no trained model; run `rahnuma nlu train` first")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            serve_command(rasa, rasa_url, model=model), stdout=log, stderr=subprocess.STDOUT, env=serve_env(token),
            start_new_session=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def free_local_url() -> str:
    """http://127.0.0.1:<a port nobody listens on right now>."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def serving(
    rasa: Path, *, log_file: Path, token: str | None = None, timeout: float = 240, model: Path = MODEL_FILE
) -> Iterator[str]:
    """A Rasa server of our own on a free port for the duration of the block; yields its URL."""
    url = free_local_url()
    process = start_background(rasa, url, token=token, log_file=log_file, model=model)
    try:
        wait_until_healthy(url, token=token, timeout=timeout, process=process)
        yield url
    finally:
        stop(process)


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
