#!/usr/bin/env python3
"""Static checks of deploy/docker/Dockerfile's build context (no Docker engine needed).

Run by scripts/check-deploy.sh. Checks that:
  * every local COPY source exists in the repository and is not excluded by
    deploy/docker/Dockerfile.dockerignore (BuildKit's per-Dockerfile ignore file);
  * everything `cargo build --locked` needs survives the ignore file: the
    workspace manifest, Cargo.lock, rust-toolchain.toml, every workspace member
    and migrations/ (embedded by sqlx at compile time);
  * build output (target/) and .git are excluded;
  * the Dockerfile uses the toolchain release pinned in rust-toolchain.toml,
    cross-compiles on $BUILDPLATFORM, builds the three binaries, runs as a
    numeric non-root user and has a HEALTHCHECK;
  * deploy/docker/rust-target.sh maps the three platforms to the right Rust
    targets and Debian cross compilers.

Usage: dockerfile_context.py REPO_ROOT
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path


def load_ignore(path: Path) -> list[tuple[bool, str]]:
    """Parses a .dockerignore into (negated, pattern) rules, in order."""
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:].strip()
        line = line.strip("/")
        rules.append((negated, line))
    return rules


def pattern_matches(pattern: str, rel: str) -> bool:
    """Docker's matching: a pattern matches a path or any of its parents; ** spans directories."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    compiled = re.compile(regex + r"\Z")
    return any(compiled.match(c) for c in candidates)


def excluded(rules: list[tuple[bool, str]], rel: str) -> bool:
    state = False
    for negated, pattern in rules:
        if pattern_matches(pattern, rel):
            state = not negated
    return state


def main() -> int:
    root = Path(sys.argv[1]).resolve()
    dockerfile = root / "deploy/docker/Dockerfile"
    ignore = root / "deploy/docker/Dockerfile.dockerignore"
    errors: list[str] = []

    if not ignore.is_file():
        errors.append(f"{ignore} is missing")
        rules = []
    else:
        rules = load_ignore(ignore)
    text = dockerfile.read_text()
    # Join continuation lines.
    logical = re.sub(r"\\\n", " ", text)

    # 1. COPY sources.
    for line in logical.splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        for src in args[:-1]:
            if src in (".", "./"):
                continue
            rel = src.strip("/")
            if not (root / rel).exists():
                errors.append(f"COPY source {src} does not exist in the repository")
            elif excluded(rules, rel):
                errors.append(f"COPY source {src} is excluded by {ignore.name}")

    # 2. What cargo needs.
    workspace = tomllib.loads((root / "Cargo.toml").read_text())
    members = workspace.get("workspace", {}).get("members", [])
    needed = ["Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "migrations"] + [
        f"{m}/Cargo.toml" for m in members
    ] + [f"{m}/src" for m in members]
    for rel in needed:
        if not (root / rel).exists():
            if rel == "migrations" or rel.endswith("/src"):
                continue  # not written yet is not the Dockerfile's fault
            errors.append(f"{rel} is missing from the repository")
        elif excluded(rules, rel):
            errors.append(f"{rel} is needed by cargo build but excluded by {ignore.name}")
    for rel in ["target", "target/release/hearth-hub", ".git", "hub/target"]:
        if not excluded(rules, rel):
            errors.append(f"{rel} should be excluded by {ignore.name} (size, wrong platform)")

    # 3. The Dockerfile's promises.
    toolchain = tomllib.loads((root / "rust-toolchain.toml").read_text())["toolchain"]["channel"]
    froms = re.findall(r"^FROM\s+(.*)$", text, flags=re.M)
    if not froms or "--platform=$BUILDPLATFORM" not in froms[0]:
        errors.append("the build stage must run on --platform=$BUILDPLATFORM (cross-compiling)")
    if not any(f"rust:{toolchain}-" in f for f in froms):
        errors.append(f"the build image must be rust:{toolchain}-... (rust-toolchain.toml pins {toolchain})")
    runtime = froms[-1] if froms else ""
    if not re.search(r"debian:bookworm-slim|gcr\.io/distroless/cc", runtime):
        errors.append(f"runtime image {runtime!r} should be debian:bookworm-slim or distroless cc")
    for binary in ["hearth-broker", "hearth-hub", "hearth-node-agent"]:
        if f"--bin {binary}" not in logical:
            errors.append(f"cargo build does not build --bin {binary}")
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]) or users[-1].startswith("0"):
        errors.append("the final USER must be a numeric non-root UID (Kubernetes runAsNonRoot)")
    if not re.search(r"^HEALTHCHECK\s", text, flags=re.M):
        errors.append("no HEALTHCHECK")

    # 4. Platform mapping.
    script = root / "deploy/docker/rust-target.sh"
    expected = {
        "linux/amd64": ("x86_64-unknown-linux-gnu", "gcc-x86-64-linux-gnu", "x86_64-linux-gnu-gcc"),
        "linux/arm64": ("aarch64-unknown-linux-gnu", "gcc-aarch64-linux-gnu", "aarch64-linux-gnu-gcc"),
        "linux/arm/v7": (
            "armv7-unknown-linux-gnueabihf",
            "gcc-arm-linux-gnueabihf",
            "arm-linux-gnueabihf-gcc",
        ),
    }
    for platform, (target, package, linker) in expected.items():
        for build_arch, native in (("amd64", platform == "linux/amd64"), ("arm64", platform == "linux/arm64")):
            out = subprocess.run(
                ["sh", str(script), platform, build_arch], capture_output=True, text=True, check=False
            )
            if out.returncode != 0:
                errors.append(f"rust-target.sh {platform} {build_arch} failed: {out.stderr.strip()}")
                continue
            env = dict(
                line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines() if "=" in line
            )
            upper = target.upper().replace("-", "_")
            want_linker = "gcc" if native else linker
            if env.get("RUST_TARGET") != target:
                errors.append(f"rust-target.sh {platform}: RUST_TARGET={env.get('RUST_TARGET')}, want {target}")
            if env.get(f"CARGO_TARGET_{upper}_LINKER") != want_linker:
                errors.append(f"rust-target.sh {platform} on {build_arch}: linker is not {want_linker}")
            packages = env.get("HEARTH_CROSS_PACKAGES", "").strip('"')
            if native and packages:
                errors.append(f"rust-target.sh {platform} on {build_arch}: native build installs {packages}")
            if not native and package not in packages.split():
                errors.append(f"rust-target.sh {platform} on {build_arch}: {package} not installed")
    bad = subprocess.run(["sh", str(script), "linux/s390x", "amd64"], capture_output=True, check=False)
    if bad.returncode == 0:
        errors.append("rust-target.sh accepts an unsupported platform")

    for e in errors:
        print(f"error: {e}")
    if not errors:
        print(
            f"Dockerfile context ok: {len(rules)} ignore rules, members {', '.join(members)}, "
            f"toolchain {toolchain}, 3 platforms mapped"
        )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
