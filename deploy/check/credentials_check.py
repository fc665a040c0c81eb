#!/usr/bin/env python3
"""Checks the credentials every rendered Kubernetes output ships with.

Run by scripts/check-deploy.sh on each `kubectl kustomize` output. Per output:

- the hub serves HTTP with a login (an HEARTH_HTTP__USERS__<NAME> variable
  or `password_file` in its config), as its LAN listener requires;
- no node agent takes an MQTT password from a Secret: a Secret reaches every
  pod of the DaemonSet, so it would be one credential shared by every Pi.
  Each agent logs in as its node name with the password kept on its Pi;
- the broker confines users with an ACL (`acl_file` in its config), and the
  ACL it ships is scripts/mosquitto-acl-example/acl unchanged.

Usage: credentials_check.py ROOT RENDERED.yaml...
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml


def containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def configmap_text(docs: list[dict], prefix: str) -> dict[str, str]:
    for d in docs:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(prefix):
            return {k: str(v) for k, v in (d.get("data") or {}).items()}
    return {}


def check(rendered: Path, acl_example: str) -> list[str]:
    docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    problems = []
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}

    hub = by_name.get(("Deployment", "hearth-hub"))
    if hub is not None:
        names = [e["name"] for c in containers(hub) for e in c.get("env", []) or []]
        hub_config = configmap_text(docs, "hearth-hub-config").get("hearth.toml", "")
        if not any(n.startswith("HEARTH_HTTP__USERS__") for n in names) and not re.search(
            r"(?m)^\s*password_file\s*=", hub_config.split("[http]", 1)[-1]
        ):
            problems.append("the hub serves HTTP without a login (no HEARTH_HTTP__USERS__*, no [http] password_file)")

    agent = by_name.get(("DaemonSet", "hearth-node-agent"))
    if agent is not None:
        for c in containers(agent):
            for e in c.get("env", []) or []:
                if e["name"] in ("HEARTH_MQTT__PASSWORD", "HEARTH_MQTT__USERNAME") and "valueFrom" in e:
                    problems.append(
                        f"node agent: {e['name']} comes from {list(e['valueFrom'])[0]}, one credential for every Pi"
                    )
            for source in c.get("envFrom", []) or []:
                if "secretRef" in source:
                    problems.append(f"node agent: envFrom Secret {source['secretRef']['name']} reaches every Pi")
            script = " ".join(c.get("args", []) + c.get("command", []))
            if 'HEARTH_MQTT__USERNAME="$NODE_NAME"' not in script:
                problems.append("node agent: does not log in as its node name (HEARTH_MQTT__USERNAME=\"$NODE_NAME\")")

    broker = by_name.get(("Deployment", "hearth-broker"))
    if broker is not None:
        files = configmap_text(docs, "hearth-broker-config")
        if not re.search(r'(?m)^\s*acl_file\s*=\s*"/etc/hearth/hearth.acl"', files.get("broker.toml", "")):
            problems.append('broker: no acl_file = "/etc/hearth/hearth.acl" in broker.toml')
        if files.get("hearth.acl") != acl_example:
            problems.append("broker: hearth.acl differs from scripts/mosquitto-acl-example/acl")
    return problems


def main() -> int:
    root, rendered = Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]]
    acl_example = (root / "scripts/mosquitto-acl-example/acl").read_text()
    failures = 0
    for r in rendered:
        problems = check(r, acl_example)
        for p in problems:
            print(f"FAIL  {r.stem}: {p}")
        if not problems:
            print(f"ok    {r.stem}")
        failures += len(problems)
    print(f"{len(rendered)} rendered outputs checked, {failures} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
