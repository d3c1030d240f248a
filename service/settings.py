"""All service configuration in one pydantic-settings class; every field can be set from the
environment as ``EBM_PURIFY_<FIELD>`` (e.g. ``EBM_PURIFY_MAX_BATCH_SIZE=64``) or by CLI flags."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as EnvParseError

from purifier.config import DEFAULT_MODEL
from purifier.errors import SettingsError


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EBM_PURIFY_", extra="ignore")

    model: str = DEFAULT_MODEL                # EBM reference (shipped name, folder, checkpoint)
    classifier: str | None = None             # torch REF[:ROLE], a user's .onnx file, or "none"; default: the model's
    classifier_input_range: tuple[float, float] = (0.0, 1.0)  # range a user's ONNX classifier expects
    backend: Literal["torch", "onnx"] = "torch"
    device: str = "cpu"
    threads: int | None = Field(None, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    model_name: str = "purifier"              # KServe name; the classifier is "<model_name>-classifier"

    max_batch_size: int = Field(64, ge=1)     # images (not copies) per compute batch
    max_queue_delay_ms: float = Field(20.0, ge=0)
    queue_capacity: int = Field(512, ge=1)    # images waiting, beyond which requests get 503
    request_timeout_s: float = Field(120.0, gt=0)
    max_timeout_s: float = Field(600.0, gt=0)
    retry_after_s: int = Field(2, ge=1)

    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_images: int = Field(64, ge=1)         # per request
    max_side: int = Field(1024, ge=1)
    max_pixels: int = Field(1_048_576, ge=1)
    max_steps: int = Field(2000, ge=0)
    max_replicates: int = Field(32, ge=1)

    api_key: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    warmup: bool = True


def load_settings(**overrides: object) -> ServiceSettings:
    """The settings from the environment with ``overrides`` (the CLI's flags) on top; a bad value is a
    one-line SettingsError naming the flag and the variable it may have come from."""
    try:
        return ServiceSettings(**overrides)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            name = str(e["loc"][0]) if e.get("loc") else "settings"
            problems.append(f"--{name.replace('_', '-')} / EBM_PURIFY_{name.upper()}: {e['msg']}")
        raise SettingsError("; ".join(problems)) from None
    except EnvParseError as err:  # a list- or tuple-valued variable that is not JSON
        raise SettingsError(f"{err} (EBM_PURIFY_<FIELD> values of list fields are JSON, e.g. '[\"https://a.example\"]')") from None
