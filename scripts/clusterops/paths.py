"""Where things live in the project tree."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The roles users deploy, and the lab's own (a git server, an AWS emulator), kept apart.
ROLES_DIR = PROJECT_ROOT / "roles"
LAB_ROLES_DIR = PROJECT_ROOT / "playbooks" / "lab" / "roles"
LAB_STATE_DIR = PROJECT_ROOT / ".lab"
LAB_INVENTORY = PROJECT_ROOT / "inventories" / "lab"
LAB_VAULT_PASSWORD = LAB_STATE_DIR / "vault-password"


def shown(path: Path) -> Path:
    """`path` relative to the working directory when it lies below it: for messages."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path
