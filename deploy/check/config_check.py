#!/usr/bin/env python3
"""Runs `<program> --check-config --config FILE` on every config the deployments ship.

Run by scripts/check-deploy.sh when HEARTH_BIN_DIR names a directory holding
hearth-broker, hearth-hub and hearth-node-agent.

Kubernetes: for every rendered kustomize output (one YAML file per overlay),
each container that runs a Hearth program gets each *.toml key of the
ConfigMap mounted into it written to a file and checked, with the environment
Kubernetes would give that container: plain values, $(VAR) references,
Secret keys decoded from the rendered Secrets, and the downward API.
Compose: each service of `docker compose config --format json` that runs a
Hearth program, with its environment and its config files.

A (program, file content, environment) triple is checked once.

The shipped Secrets and env.example hold `CHANGE-ME-...` placeholders, which
the programs refuse on a LAN listener. Where the environment has one, the
config is checked twice: as shipped it must be refused naming the
placeholder (what a user who forgot to replace it sees; broker and hub
only, the agent is a client), and with each
placeholder replaced by a password of its own (what a user's overlay or
.env gives) it must be valid.

Usage: config_check.py BIN_DIR WORK_DIR RENDERED.yaml... [--compose COMPOSE.json]
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

PROGRAMS = ("hearth-broker", "hearth-hub", "hearth-node-agent")
WORKLOADS = ("Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod")
FIELD_VALUES = {
    "spec.nodeName": "check-node",
    "metadata.name": "check-pod",
    "metadata.namespace": "hearth",
    "status.podIP": "10.0.0.10",
    "status.hostIP": "10.0.0.1",
}


# The examples' placeholder passwords, as the programs recognise them
# (hearth_broker::is_placeholder).
SERVERS = ("hearth-broker", "hearth-hub")
PLACEHOLDER = re.compile(r"^\s*change[-_]?me", re.IGNORECASE)


def own_password(name: str) -> str:
    """A stand-in for a user's own password: stable, and no placeholder."""
    return "check-" + hashlib.sha256(name.encode()).hexdigest()[:24]


def pointed_at_copies(config: str, copies: dict[str, Path]) -> str:
    """`config` with every quoted in-container path of `copies` replaced by its copy."""
    for inside, copy in copies.items():
        config = config.replace(f'"{inside}"', f'"{copy}"')
    return config


def program_of(words: list[str]) -> str | None:
    joined = " ".join(words)
    for program in PROGRAMS:
        if re.search(rf"(^|[/\s]){re.escape(program)}(\s|$)", joined):
            return program
    return None


def pod_spec(doc: dict) -> dict:
    spec = doc.get("spec", {})
    if doc["kind"] == "Pod":
        return spec
    if doc["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


def resolve_env(container: dict, secrets: dict, configmaps: dict) -> dict[str, str]:
    env: dict[str, str] = {}

    def expand(value: str) -> str:
        # Kubernetes: $(VAR) from EARLIER entries only, $$ escapes. An
        # unresolved reference stays as literal text in the pod: an error here.
        def one(m: re.Match) -> str:
            if m.group(0) == "$$":
                return "$"
            if m.group(1) not in env:
                raise ValueError(
                    f"env {item['name']}: $({m.group(1)}) is not defined before it (Kubernetes would "
                    "pass the text literally)"
                )
            return env[m.group(1)]

        return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, value)

    for source in container.get("envFrom", []) or []:
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            env.update({prefix + k: v for k, v in secrets.get(source["secretRef"]["name"], {}).items()})
        if "configMapRef" in source:
            env.update({prefix + k: v for k, v in configmaps.get(source["configMapRef"]["name"], {}).items()})
    for item in container.get("env", []) or []:
        name = item["name"]
        if "value" in item:
            env[name] = expand(str(item["value"]))
            continue
        ref = item.get("valueFrom", {})
        if "secretKeyRef" in ref:
            r = ref["secretKeyRef"]
            value = secrets.get(r["name"], {}).get(r["key"])
            if value is None and not r.get("optional"):
                raise KeyError(f"env {name}: Secret {r['name']} has no key {r['key']}")
            if value is not None:
                env[name] = value
        elif "configMapKeyRef" in ref:
            r = ref["configMapKeyRef"]
            value = configmaps.get(r["name"], {}).get(r["key"])
            if value is not None:
                env[name] = value
        elif "fieldRef" in ref:
            env[name] = FIELD_VALUES.get(ref["fieldRef"]["fieldPath"], "x")
        else:
            env[name] = "1"
    return env


def k8s_jobs(rendered: Path, work: Path):
    docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    configmaps: dict[str, dict[str, str]] = {}
    secrets: dict[str, dict[str, str]] = {}
    for d in docs:
        name = d["metadata"]["name"]
        if d["kind"] == "ConfigMap":
            configmaps[name] = {k: str(v) for k, v in (d.get("data") or {}).items()}
        elif d["kind"] == "Secret":
            values = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
            values.update({k: str(v) for k, v in (d.get("stringData") or {}).items()})
            secrets[name] = values
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        spec = pod_spec(d)
        volumes = {v["name"]: v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            program = program_of(list(container.get("command", [])) + list(container.get("args", [])))
            if program is None:
                continue
            env = resolve_env(container, secrets, configmaps)
            # Every file the container's ConfigMaps put on its disk, copied
            # under WORK: a config that names one of them (acl_file) is
            # checked against the copy.
            copies: dict[str, Path] = {}
            for mount in container.get("volumeMounts", []):
                cm = volumes.get(mount["name"])
                for key, content in sorted(configmaps.get(cm, {}).items()) if cm else []:
                    path = work / rendered.stem / cm / key
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(content)
                    copies[f"{mount['mountPath'].rstrip('/')}/{key}"] = path
            for mount in container.get("volumeMounts", []):
                cm = volumes.get(mount["name"])
                if cm is None:
                    continue
                for key, content in sorted(configmaps.get(cm, {}).items()):
                    if not key.endswith(".toml"):
                        continue
                    path = work / rendered.stem / cm / key
                    path.write_text(pointed_at_copies(content, copies))
                    label = f"{rendered.stem}: {d['kind']}/{d['metadata']['name']} {program} {mount['mountPath']}/{key}"
                    yield label, program, path, env


def compose_jobs(compose_json: Path, work: Path):
    model = json.loads(compose_json.read_text())
    top = model.get("configs", {}) or {}
    for name, service in sorted((model.get("services") or {}).items()):
        command = service.get("command") or []
        if isinstance(command, str):
            command = command.split()
        program = program_of(list(service.get("entrypoint") or []) + list(command))
        if program is None:
            continue
        env = {k: ("" if v is None else str(v)) for k, v in (service.get("environment") or {}).items()}
        refs = service.get("configs", []) or []
        copies = {
            ref.get("target", ""): Path(top[ref["source"]]["file"])
            for ref in refs
            if "file" in top.get(ref["source"], {})
        }
        for ref in refs:
            source = top.get(ref["source"], {})
            target = ref.get("target", "")
            if "file" in source and target.endswith(".toml"):
                path = work / "compose" / name / Path(target).name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(pointed_at_copies(Path(source["file"]).read_text(), copies))
                yield f"compose: service {name} {program} {target}", program, path, env


def main() -> int:
    args = sys.argv[1:]
    compose = None
    if "--compose" in args:
        i = args.index("--compose")
        compose = Path(args[i + 1])
        del args[i : i + 2]
    bin_dir, work, rendered = Path(args[0]), Path(args[1]), [Path(a) for a in args[2:]]
    work.mkdir(parents=True, exist_ok=True)

    missing = [p for p in PROGRAMS if not os.access(bin_dir / p, os.X_OK)]
    if missing:
        print(f"error: {bin_dir} lacks executable {', '.join(missing)}")
        return 1

    jobs = []
    failures = 0
    for r in rendered:
        try:
            jobs.extend(k8s_jobs(r, work))
        except (KeyError, ValueError) as e:
            failures += 1
            print(f"FAIL  {r.stem}: {e}")
    if compose is not None:
        jobs.extend(compose_jobs(compose, work))
    if not jobs:
        print("error: found no Hearth config to check")
        return 1

    done: dict[str, tuple[int, str]] = {}
    base_env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8"}

    def run(program: str, path: Path, env: dict[str, str]) -> tuple[int, str]:
        content = path.read_bytes()
        key = hashlib.sha256(
            program.encode() + b"\0" + content + b"\0" + json.dumps(sorted(env.items())).encode()
        ).hexdigest()
        if key not in done:
            try:
                out = subprocess.run(
                    [str(bin_dir / program), "--check-config", "--config", str(path)],
                    env={**base_env, **env},
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                done[key] = (out.returncode, (out.stdout + out.stderr).strip())
            except subprocess.TimeoutExpired:
                done[key] = (124, "timed out after 60 s")
        return done[key]

    def report(label: str, ok: bool, code: int, output: str) -> None:
        nonlocal failures
        if ok:
            print(f"ok    {label}")
        else:
            failures += 1
            print(f"FAIL  {label} (exit {code})")
            for line in output.splitlines()[-15:]:
                print(f"      {line}")

    for label, program, path, env in jobs:
        placeholders = {k for k, v in env.items() if PLACEHOLDER.match(v)}
        # Only the programs that serve the LAN refuse a placeholder; the
        # agent is a client, and the broker refuses its login.
        if placeholders and program in SERVERS:
            code, output = run(program, path, env)
            refused = code != 0 and "placeholder" in output
            report(f"{label} [as shipped: refused for its placeholder]", refused, code, output)
        if placeholders:
            env = {k: (own_password(k) if k in placeholders else v) for k, v in env.items()}
            label = f"{label} [placeholders replaced]"
        code, output = run(program, path, env)
        report(label, code == 0, code, output)
    print(f"{len(jobs)} config uses checked ({len(done)} distinct runs), {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
