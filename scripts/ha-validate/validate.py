#!/usr/bin/env python3
"""Validates MQTT discovery payloads with Home Assistant's own discovery code.

Reads JSON lines, one discovery message each:

    {"topic": "homeassistant/light/hearth_pi-1/light_red/config", "payload": "{...}"}

from the files named on the command line, or from stdin, and runs every
payload through what Home Assistant (the version pinned in requirements.txt)
does with it: the topic pattern and supported components of
``homeassistant.components.mqtt.discovery``, the abbreviation tables of
``homeassistant.components.mqtt.abbreviations`` (including the device,
origin and availability blocks, and the ``~`` topic base), the origin
schema, then the platform's own ``DISCOVERY_SCHEMA`` (for device triggers,
``device_automation.DISCOVERY_SCHEMA`` followed by
``device_trigger.TRIGGER_DISCOVERY_SCHEMA``, as Home Assistant chains them).

On top of that it refuses what Home Assistant accepts but then ignores or
refuses at setup, because each is a silent failure for the user:
- a key the schema drops (Home Assistant's discovery schemas remove unknown
  keys, so a misspelt ``comand_topic`` would leave a light that cannot be
  switched);
- two entities of one component sharing a ``unique_id`` (the second is
  refused at setup);
- two device triggers with the same device, type and subtype (Home
  Assistant logs a conflict and drops the second).

An empty payload is a removal and needs no validation. Exits 0 when every
payload is accepted, 1 listing every rejected one, 2 on unusable input.

    validate.py [--prefix homeassistant] [FILE...]
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from importlib import import_module
from importlib.metadata import version
from typing import Any

import voluptuous as vol
from homeassistant.components.mqtt import device_automation, device_trigger
from homeassistant.components.mqtt.abbreviations import (
    ABBREVIATIONS,
    DEVICE_ABBREVIATIONS,
    ORIGIN_ABBREVIATIONS,
)
from homeassistant.components.mqtt.discovery import (
    MQTT_ORIGIN_INFO_SCHEMA,
    SUPPORTED_COMPONENTS,
    TOPIC_BASE,
    TOPIC_MATCHER,
)
from homeassistant.helpers import config_validation as cv

# Keys the discovery code itself handles before the platform schema:
# `platform` it adds, `origin` it validates (above) and logs for every
# component, so a platform schema dropping it loses nothing.
HANDLED_BY_DISCOVERY = {"platform", "origin"}

# `default_entity_id` (Home Assistant 2025.10 and later) names a new entity;
# it replaced `object_id`, which 2025.10 deprecated and 2026.4 stopped
# using. The Home Assistant these checks run (2024.3.3, see
# requirements.txt) predates it and drops the key, as every Home Assistant
# before 2025.10 does, harmlessly. So it is checked here the way 2025.10's
# schema and entity registry check it (`cv.entity_id` of the component's
# domain, one entity per id), set aside before an older schema, and
# `object_id` is refused.
NEWER_KEYS = {"default_entity_id"}
ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")


def expand(payload: dict[str, Any]) -> dict[str, Any]:
    """Expands abbreviations and the ``~`` topic base exactly as
    ``mqtt.discovery.async_discovery_message_received`` does."""
    for key in list(payload):
        payload[ABBREVIATIONS.get(key, key)] = payload.pop(key)
    if isinstance(payload.get("device"), dict):
        device = payload["device"]
        for key in list(device):
            device[DEVICE_ABBREVIATIONS.get(key, key)] = device.pop(key)
    if "origin" in payload:
        origin = payload["origin"]
        if isinstance(origin, dict):
            for key in list(origin):
                origin[ORIGIN_ABBREVIATIONS.get(key, key)] = origin.pop(key)
        MQTT_ORIGIN_INFO_SCHEMA(origin)
    if "availability" in payload:
        for conf in cv.ensure_list(payload["availability"]):
            if isinstance(conf, dict):
                for key in list(conf):
                    conf[ABBREVIATIONS.get(key, key)] = conf.pop(key)
    if TOPIC_BASE in payload:
        base = payload.pop(TOPIC_BASE)
        for key, value in payload.items():
            if isinstance(value, str) and value and key.endswith("topic"):
                if value[0] == TOPIC_BASE:
                    payload[key] = f"{base}{value[1:]}"
                if value[-1] == TOPIC_BASE:
                    payload[key] = f"{value[:-1]}{base}"
        for conf in cv.ensure_list(payload.get("availability") or []):
            if isinstance(conf, dict) and (topic := str(conf.get("topic"))):
                if topic[0] == TOPIC_BASE:
                    conf["topic"] = f"{base}{topic[1:]}"
                if topic[-1] == TOPIC_BASE:
                    conf["topic"] = f"{topic[:-1]}{base}"
    payload["platform"] = "mqtt"
    return payload


def schemas_for(component: str) -> list[Any]:
    """The schemas Home Assistant applies to a discovered ``component``."""
    if component == "device_automation":
        return [device_automation.DISCOVERY_SCHEMA, device_trigger.TRIGGER_DISCOVERY_SCHEMA]
    module = import_module(f"homeassistant.components.mqtt.{component}")
    return [module.DISCOVERY_SCHEMA]


def dropped_keys(given: dict[str, Any], validated: dict[str, Any]) -> list[str]:
    """Keys in ``given`` (and its device block) the schema threw away."""
    dropped = [k for k in given if k not in validated and k not in HANDLED_BY_DISCOVERY]
    device = given.get("device")
    if isinstance(device, dict) and isinstance(validated.get("device"), dict):
        dropped += [f"device.{k}" for k in device if k not in validated["device"]]
    return dropped


def validate(topic: str, payload: str, prefix: str, seen: dict) -> str | None:
    """None if Home Assistant accepts the message, else why not."""
    if not topic.startswith(f"{prefix}/"):
        return f"not under the discovery prefix {prefix!r}"
    match = TOPIC_MATCHER.fullmatch(topic[len(prefix) + 1 :])
    if not match:
        return "topic does not match <component>/[<node_id>/]<object_id>/config"
    component = match.group("component")
    if component not in SUPPORTED_COMPONENTS:
        return f"component {component!r} is not supported by MQTT discovery"
    if payload == "":
        return None
    try:
        raw = json.loads(payload)
    except ValueError as err:
        return f"payload is not JSON: {err}"
    if not isinstance(raw, dict):
        return "payload is not a JSON object"
    try:
        given = expand(copy.deepcopy(raw))
    except vol.Invalid as err:
        return f"origin: {humanize(err)}"
    if "object_id" in given:
        return "object_id is deprecated since Home Assistant 2025.10; use default_entity_id"
    entity_id = given.get("default_entity_id")
    if entity_id is not None:
        if not isinstance(entity_id, str) or not ENTITY_ID.fullmatch(entity_id):
            return f"default_entity_id {entity_id!r} is not an entity id"
        if entity_id.split(".")[0] != component:
            return f"default_entity_id {entity_id!r} is not in the {component} domain"
        key = ("default_entity_id", entity_id)
        if key in seen and seen[key] != topic:
            return f"default_entity_id {entity_id!r} is also used by {seen[key]}"
        seen[key] = topic
    config: Any = copy.deepcopy(given)
    known = import_module("homeassistant.components.mqtt.const")
    if not hasattr(known, "CONF_DEFAULT_ENTITY_ID"):
        for key in NEWER_KEYS:
            config.pop(key, None)
            given.pop(key, None)
    for schema in schemas_for(component):
        try:
            config = schema(config)
        except vol.Invalid as err:
            return humanize(err)
    if dropped := dropped_keys(given, config):
        return f"Home Assistant ignores {', '.join(sorted(dropped))}"
    if component == "device_automation":
        identifiers = tuple(sorted(config["device"].get("identifiers", [])))
        key = ("trigger", identifiers, config["type"], config["subtype"])
    elif unique_id := config.get("unique_id"):
        key = (component, unique_id)
    else:
        return None
    if key in seen and seen[key] != topic:
        return f"{key[1:]} is also used by {seen[key]}"
    seen[key] = topic
    return None


def humanize(err: vol.Invalid) -> str:
    if isinstance(err, vol.MultipleInvalid):
        return "; ".join(humanize(e) for e in err.errors)
    where = ".".join(str(p) for p in err.path)
    return f"{where}: {err.msg}" if where else str(err.msg)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="homeassistant", help="discovery prefix")
    parser.add_argument("files", nargs="*", help="JSON lines files (default: stdin)")
    args = parser.parse_args()
    streams = [open(f, encoding="utf-8") for f in args.files] or [sys.stdin]
    seen: dict = {}
    checked = removals = 0
    rejected: list[str] = []
    for stream in streams:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                message = json.loads(line)
                topic, payload = message["topic"], message["payload"]
            except (ValueError, KeyError, TypeError) as err:
                print(f"line {number}: not a {{topic, payload}} JSON line: {err}", file=sys.stderr)
                return 2
            checked += 1
            removals += payload == ""
            if (why := validate(topic, payload, args.prefix, seen)) is not None:
                rejected.append(f"REJECTED {topic}: {why}\n    payload: {payload}")
    for line in rejected:
        print(line)
    print(
        f"Home Assistant {version('homeassistant')}: {checked} discovery message(s), "
        f"{removals} removal(s), {len(rejected)} rejected"
    )
    if checked == 0:
        print("no discovery messages to validate", file=sys.stderr)
        return 2
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
