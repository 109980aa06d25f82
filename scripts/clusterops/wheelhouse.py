"""The wheelhouse: every wheel an Airflow host's virtualenv needs, fetched once on the controller.

The hosts install from it with no package index (roles/airflow_common, variable
airflow_wheelhouse_dir): hosts that cannot reach PyPI can still be deployed, and a new
host costs a copy and an unpack instead of hundreds of downloads.

One archive per release and architecture, `<dir>/airflow-<version>-python<py>-<arch>.tar`:
a folder of that name holding the wheels of every pin of the shipped constraints file for
the hosts' platform (Debian 12: glibc 2.36, CPython), the constraints file itself, and
uv's binary (pinned there too), which the hosts install with.
Beside it, `<name>.recipe` records what it was built from, so building again is a no-op
until the constraints, the requirements or the platform change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from clusterops.console import Failure, info, step
from clusterops.files import write_atomic
from clusterops.release import Release

DEFAULT_INDEX_URL = "https://pypi.org/simple"
# The hosts' C library (Debian 12), which decides the manylinux wheels they can run.
GLIBC_MINOR = 36
ARCHITECTURES = ("x86_64", "aarch64")
# The archive's layout; a new one makes every wheelhouse be built again.
FORMAT = "wheels+constraints+uv binary"
# Names of the older manylinux tags (PEP 600 aliases) and the glibc minor each stands for.
_LEGACY_TAGS = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}


def isolated_pip_env(index_url: str) -> dict[str, str]:
    """This machine's environment without its pip settings but the CA bundle.

    Local find-links folders and extra indexes of the controller are not what the hosts
    get; only `index_url` is asked.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    env.update(
        PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=index_url, PIP_DISABLE_PIP_VERSION_CHECK="1"
    )
    return env


def platform_tags(arch: str, glibc_minor: int = GLIBC_MINOR) -> list[str]:
    """Every wheel platform tag a host with this glibc and architecture runs."""
    if arch not in ARCHITECTURES:
        raise Failure(f"architecture '{arch}' is not one of {', '.join(ARCHITECTURES)}", 2)
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 4, -1)]
    legacy = [f"{name}_{arch}" for name, minor in _LEGACY_TAGS.items() if minor <= glibc_minor]
    return [*tags, *legacy, f"linux_{arch}"]


def archive_name(release: Release, arch: str) -> str:
    """What roles/airflow_common/vars/main.yml calls the archive (__airflow_wheelhouse_name)."""
    return f"airflow-{release.version}-python{release.python}-{arch}"


def recipe(release: Release, arch: str) -> str:
    """A digest of everything that decides the archive's contents."""
    digest = hashlib.sha256()
    digest.update(release.constraints.read_bytes())
    for part in [FORMAT, release.resolved_for(), *platform_tags(arch)]:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _download(release: Release, arch: str, dest: Path, index_url: str) -> None:
    """Every pin of the constraints file (pip's included), as a wheel for the hosts.

    The constraints were resolved for the hosts (scripts/make_constraints.py), markers and
    all, so they are the whole set: nothing is resolved again here (--no-deps).
    """
    abi = "cp" + release.python.replace(".", "")
    argv = [
        sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest), "--no-deps",
        "--only-binary=:all:", "--implementation", "cp", "--python-version", release.resolved_for(),
        "--abi", abi, "--abi", "abi3", "--abi", "none",
        *(f"--platform={tag}" for tag in platform_tags(arch)),
        "--requirement", str(release.constraints),
    ]  # fmt: skip
    result = subprocess.run(
        argv, capture_output=True, text=True, check=False, env=isolated_pip_env(index_url)
    )
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line or "error" in line]
        raise Failure(
            f"pip could not download the wheels from {index_url}: "
            + ("; ".join(errors[-3:]) or result.stderr.strip()[-500:])
        )


def _unpack_uv(folder: Path) -> None:
    """Put uv's binary (from its wheel, pinned in the constraints) beside the wheels.

    The hosts run it from there: no virtualenv is needed to install the installer.
    """
    wheels = sorted(folder.glob("uv-*.whl"))
    if not wheels:
        raise Failure(
            "the constraints file pins no uv: write it again with scripts/make_constraints.py"
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = next((n for n in wheel.namelist() if n.endswith(".data/scripts/uv")), None)
        if member is None:
            raise Failure(f"{wheels[0].name} holds no uv binary")
        (folder / "uv").write_bytes(wheel.read(member))
    (folder / "uv").chmod(0o755)
    wheels[0].unlink()  # the hosts run the binary; they do not install uv


def build(release: Release, output: Path, arch: str, index_url: str) -> Path:
    """Make (or find up to date) the archive for `arch` in `output`; return its path."""
    name = archive_name(release, arch)
    archive = output / f"{name}.tar"
    recipe_file = output / f"{name}.recipe"
    wanted = recipe(release, arch)
    if archive.is_file() and recipe_file.is_file() and recipe_file.read_text().strip() == wanted:
        info(f"wheelhouse {archive} is up to date")
        return archive
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".partial-", dir=output) as tmp:
        folder = Path(tmp) / name
        folder.mkdir()
        with step(f"Downloading Airflow {release.version}'s wheels for {arch} from {index_url}"):
            _download(release, arch, folder, index_url)
        shutil.copyfile(release.constraints, folder / "constraints.txt")
        _unpack_uv(folder)
        wheels = sorted(folder.glob("*.whl"))
        with step(f"Writing {archive} ({len(wheels)} wheels)"):
            partial = Path(tmp) / archive.name
            with tarfile.open(partial, "w") as tar:
                tar.add(folder, arcname=name)
            partial.replace(archive)
    write_atomic(recipe_file, wanted + "\n")
    info(f"wheelhouse {archive}: {archive.stat().st_size / 1024**2:.0f} MiB")
    return archive
