"""The one environment reader that every settings module shares."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A developer may keep local overrides in `.env` at the repository root; the real
# environment always wins over the file.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Mutable state of the embedded defaults (SQLite file, file-backed broker, beat
# schedule) lives here, outside the source tree's tracked files.
VAR_DIR = Path(env.str("DESKOPS_VAR_DIR", default=str(BASE_DIR / "var")))
