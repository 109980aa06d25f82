"""The lab's base image: Debian 12 from debootstrap, plus a layer that makes it VM-like.

No registry is assumed to be reachable, so the image is built locally in two steps:
1. a minimal root filesystem from debootstrap, imported as ``<name>-rootfs:<hash>``;
2. ``image/Dockerfile`` on top of it (sudo user, sshd, CA certificates), tagged
   ``<name>:<hash>``.
Each hash covers that step's whole recipe, so an image is rebuilt only when its recipe
changes (packages, mirror, Dockerfile, extra files, CA certificates).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import docker
import yaml
from docker.errors import BuildError, DockerException, ImageNotFound

from clusterops.console import Failure, info, step
from clusterops.paths import LAB_ROLES_DIR, LAB_STATE_DIR, ROLES_DIR

RECIPE_DIR = Path(__file__).parent / "image"
DEFAULT_CA_DIR = Path("/usr/local/share/ca-certificates")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
LAB_USER = "admin"

# What a minimal Debian cloud image has that Ansible and our roles rely on.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "sudo",
    "openssh-server",
    "iproute2",
    "iputils-ping",
    "procps",
    "ca-certificates",
    "less",
)


# The two kinds of lab image. "bare": what a minimal Debian 12 cloud image has. "prepared":
# also every leaf package the roles install, as users bake golden images (Packer, AMIs)
# for their VMs, so that deploys skip those downloads. Never the server packages
# (PostgreSQL, Redis): installing them creates and starts per-host state.
KINDS = ("prepared", "bare")


def role_packages(roles_dirs: tuple[Path, ...] = (ROLES_DIR, LAB_ROLES_DIR)) -> tuple[str, ...]:
    """The leaf packages the roles install: every `__<role>_packages` list of their vars.

    Read from the roles themselves (vars/main.yml), so the image cannot drift from them.
    The `__<role>_server_packages` lists are left out, and so is any name with Jinja in it.
    """
    found: set[str] = set()
    for path in sorted(p for d in roles_dirs for p in d.glob("*/vars/main.yml")):
        role = path.parents[1].name
        values = yaml.safe_load(path.read_text()) or {}
        for name in (f"__{role}_packages",):
            packages = values.get(name, [])
            if not isinstance(packages, list):
                raise Failure(f"{path}: {name} must be a list of Debian package names")
            found.update(str(p) for p in packages if "{" not in str(p))
    return tuple(sorted(found))


@dataclass(frozen=True)
class ImageRecipe:
    """Everything that decides what the base image contains."""

    name: str = "airflow-lab"
    suite: str = "bookworm"
    mirror: str = DEFAULT_MIRROR
    security_mirror: str = DEFAULT_SECURITY_MIRROR
    ca_dir: Path | None = DEFAULT_CA_DIR
    packages: tuple[str, ...] = PACKAGES
    user: str = LAB_USER
    # Installed with apt in the second layer (a prepared image): the same root filesystem
    # serves both kinds, so a machine bootstraps Debian once.
    extra_packages: tuple[str, ...] = ()

    def ca_files(self) -> list[Path]:
        if self.ca_dir is None or not self.ca_dir.is_dir():
            return []
        return sorted(p for p in self.ca_dir.rglob("*.crt") if p.is_file())

    def rootfs_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.suite, self.mirror, ",".join(self.packages)):
            digest.update(part.encode() + b"\0")
        return digest.hexdigest()[:12]

    def image_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.rootfs_hash(), self.security_mirror, self.user, *self.extra_packages):
            digest.update(part.encode() + b"\0")
        for path in sorted(RECIPE_DIR.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(RECIPE_DIR)).encode() + b"\0")
                digest.update(path.read_bytes())
        for path in self.ca_files():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:12]

    @property
    def rootfs_tag(self) -> str:
        # One root filesystem for both kinds of image (extra_packages go into the layer above).
        return f"airflow-lab-rootfs:{self.rootfs_hash()}"

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.image_hash()}"


def controller_mirrors(apt_dir: Path = Path("/etc/apt")) -> tuple[str, str]:
    """The Debian mirrors this machine's apt uses, so that lab hosts use the same ones."""
    mirror, security = DEFAULT_MIRROR, DEFAULT_SECURITY_MIRROR
    sources = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            urls = [w for w in words if w.startswith(("http://", "https://"))]
            if not urls or line.lstrip().startswith("#"):
                continue
            url = urls[0].rstrip("/")
            if url.endswith("/debian-security"):
                security = url
            elif url.endswith("/debian"):
                mirror = url
    return mirror, security


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def _debootstrap(recipe: ImageRecipe, target: Path, log: Path) -> None:
    if shutil.which("debootstrap") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise Failure("debootstrap is not installed: run 'sudo apt-get install debootstrap'")
        with log.open("ab") as out:
            subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if shutil.which("debootstrap") is None:
            raise Failure(f"installing debootstrap failed; see {log}")
    if os.geteuid() != 0:
        raise Failure("building the lab image runs debootstrap, which needs root: use sudo")
    shutil.rmtree(target, ignore_errors=True)
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(recipe.packages)}",
        recipe.suite,
        str(target),
        recipe.mirror,
    ]
    with log.open("ab") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise Failure(f"debootstrap failed (exit {result.returncode}); see {log}")


def _import_rootfs(client: docker.DockerClient, rootfs: Path, tag: str) -> None:
    repository, _, version = tag.partition(":")
    with subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
    ) as tar:
        if tar.stdout is None:
            raise Failure("tar produced no output")
        client.api.import_image(src=tar.stdout, repository=repository, tag=version)
    if tar.returncode != 0 or not _exists(client, tag):
        raise Failure(f"importing the root filesystem from {rootfs} as {tag} failed")


def _build_context(recipe: ImageRecipe) -> io.BytesIO:
    """The Dockerfile, its files and the CA certificates as a tar stream."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(RECIPE_DIR, arcname=".")
        ca = tarfile.TarInfo("ca")
        ca.type = tarfile.DIRTYPE
        ca.mode = 0o755
        tar.addfile(ca)
        for path in recipe.ca_files():
            tar.add(path, arcname=f"ca/{path.name}")
    buffer.seek(0)
    return buffer


def _build_layer(client: docker.DockerClient, recipe: ImageRecipe, log: Path) -> None:
    try:
        _, output = client.images.build(
            fileobj=_build_context(recipe),
            custom_context=True,
            tag=recipe.tag,
            rm=True,
            forcerm=True,
            buildargs={
                "ROOTFS": recipe.rootfs_tag,
                "MIRROR": recipe.mirror,
                "SECURITY_MIRROR": recipe.security_mirror,
                "SUITE": recipe.suite,
                "LAB_USER": recipe.user,
                "PREPARED_PACKAGES": " ".join(recipe.extra_packages),
            },
            labels={"org.airflow-cluster.recipe": recipe.image_hash()},
        )
    except BuildError as error:
        with log.open("a") as out:
            for chunk in error.build_log:
                out.write(str(chunk.get("stream", chunk)))
        raise Failure(f"building {recipe.tag} failed: {error.msg}; see {log}") from error
    except DockerException as error:
        raise Failure(f"building {recipe.tag} failed: {error}") from error
    with log.open("a") as out:
        for chunk in output:
            out.write(str(chunk.get("stream", "")))


def recipe_for(ca_certs: str | None = None, kind: str = "prepared") -> ImageRecipe:
    """The recipe for this machine: its Debian mirrors (or LAB_DEBIAN_MIRROR) and CAs.

    `ca_certs` is a folder of *.crt, or 'none'; by default LAB_CA_CERTS or DEFAULT_CA_DIR.
    `kind` is one of KINDS.
    """
    if kind not in KINDS:
        raise Failure(f"the lab image is one of {', '.join(KINDS)}, not '{kind}'", 2)
    mirror, security = controller_mirrors()
    ca = ca_certs or os.environ.get("LAB_CA_CERTS", str(DEFAULT_CA_DIR))
    extra = role_packages() if kind == "prepared" else ()
    return ImageRecipe(
        name="airflow-lab" if kind == "prepared" else "airflow-lab-bare",
        mirror=os.environ.get("LAB_DEBIAN_MIRROR", mirror),
        security_mirror=security,
        ca_dir=None if ca == "none" else Path(ca),
        extra_packages=tuple(p for p in extra if p not in PACKAGES),
    )


def ensure_image(client: docker.DockerClient, recipe: ImageRecipe) -> str:
    """Build whatever part of the base image is missing; return the image's tag."""
    if _exists(client, recipe.tag):
        info(f"lab image {recipe.tag} is up to date")
        return recipe.tag
    LAB_STATE_DIR.mkdir(exist_ok=True)
    log = LAB_STATE_DIR / "image-build.log"
    if not _exists(client, recipe.rootfs_tag):
        rootfs = LAB_STATE_DIR / "build" / "rootfs"
        rootfs.parent.mkdir(exist_ok=True)
        with step(f"Bootstrapping Debian {recipe.suite} from {recipe.mirror} (log: {log.name})"):
            _debootstrap(recipe, rootfs, log)
        with step(f"Importing the root filesystem as {recipe.rootfs_tag}"):
            try:
                _import_rootfs(client, rootfs, recipe.rootfs_tag)
            finally:
                shutil.rmtree(rootfs, ignore_errors=True)
    cas = len(recipe.ca_files())
    with step(f"Building {recipe.tag} (trusting {cas} extra CA certificate(s))"):
        _build_layer(client, recipe, log)
    return recipe.tag
