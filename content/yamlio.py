"""Reading YAML content: libyaml's C parser when PyYAML was built with it (the content library loads in a tenth of
the time, which every command that loads it pays: the bot, the export, the report), else the pure-Python one. The
same safe constructors either way, so the same values."""

from __future__ import annotations

from typing import Any

import yaml

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_LOADER)
