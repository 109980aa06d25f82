"""Where things live in the project tree."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAB_STATE_DIR = PROJECT_ROOT / ".lab"
LAB_INVENTORY = PROJECT_ROOT / "inventories" / "lab"
