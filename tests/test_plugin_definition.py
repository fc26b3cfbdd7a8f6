"""The tap's Meltano plugin definitions agree with each other and with the tap itself.

Three descriptions of one plugin: the tap's own `tap-smartforms --about` (the truth,
generated from its settings schema), meltano.yml (what this project runs) and
hub/extractors/tap-smartforms.yml (what Meltano Hub publishes). Same settings,
kinds and capabilities in all three.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import MELTANO_EXECUTABLE, MELTANO_TIMEOUT_SECONDS, REPO_ROOT, tap_about

HUB_DEFINITION = REPO_ROOT / "hub" / "extractors" / "tap-smartforms.yml"

# From Meltano Hub's schemas (github.com/meltano/hub, schemas/plugin_definitions/
# extractors.schema.json and schemas/common/*.schema.json).
HUB_REQUIRED_KEYS = {"name", "namespace", "variant", "label"}
HUB_EXTRACTOR_KEYS = {
    "name", "pip_url", "variant", "namespace", "label", "description", "executable",
    "settings", "docs", "repo", "logo_url", "hidden", "settings_group_validation",
    "commands", "capabilities", "metadata", "schema", "select", "maintenance_status",
    "domain_url", "keywords", "requires", "definition", "next_steps", "settings_preamble",
    "usage", "prereq", "quality", "ext_repo",
}  # fmt: skip
HUB_SETTING_KEYS = {
    "name", "aliases", "label", "value", "placeholder", "kind", "description", "tooltip",
    "documentation", "env", "value_processor", "value_post_processor", "oauth", "options",
    "docs", "hidden", "sensitive",
}  # fmt: skip
HUB_SETTING_KINDS = {
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "options",
    "object", "array", "boolean", "string", "decimal",
}  # fmt: skip
HUB_CAPABILITIES = {
    "properties", "catalog", "discover", "state", "about", "stream-maps",
    "schema-flattening", "activate-version", "batch", "test", "log-based",
    "structured-logging",
}  # fmt: skip


@pytest.fixture(scope="module")
def about() -> dict[str, Any]:
    about: dict[str, Any] = json.loads(tap_about("json"))
    return about


@pytest.fixture(scope="module")
def hub() -> dict[str, Any]:
    definition: dict[str, Any] = yaml.safe_load(HUB_DEFINITION.read_text(encoding="utf-8"))
    return definition


@pytest.fixture(scope="module")
def meltano_yml() -> dict[str, Any]:
    project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    extractor: dict[str, Any] = next(
        p for p in project["plugins"]["extractors"] if p["name"] == "tap-smartforms"
    )
    return extractor


# ------------------------------------------------------------------ --about, as Hub sees it


def _types(schema: dict[str, Any]) -> set[str]:
    """The non-null JSON types a setting's schema allows, across oneOf/anyOf branches."""
    declared = schema.get("type", [])
    types = {declared} if isinstance(declared, str) else set(declared)
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        if isinstance(branch, dict):
            types |= _types(branch)
    return types - {"null"}


def _holds_secret(schema: dict[str, Any]) -> bool:
    if schema.get("secret"):
        return True
    nested = list(schema.get("properties", {}).values())
    if isinstance(schema.get("items"), dict):
        nested.append(schema["items"])
    return any(_holds_secret(child) for child in nested)


def _kind(schema: dict[str, Any]) -> str:
    # A secret is `kind: string` with `sensitive: true` (the `sensitive` key below):
    # Meltano rewrites the deprecated `kind: password` so whenever it edits meltano.yml.
    types = _types(schema)
    if "enum" in schema:
        return "options"
    if schema.get("format") in ("date-time", "date"):
        return "date_iso8601"
    if "array" in types:
        return "array"
    if len(types) == 1 and types <= {"integer", "boolean", "object", "string"}:
        return types.pop()
    return "string"  # several scalar types: Meltano passes the text through


def about_settings(about: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The settings of `--about` as Hub lists them (meltano/hub-utils does the same):
    an object setting with named sub-settings becomes dotted settings
    (``batch_config.encoding.format``); one whose keys are the user's to choose
    (``stream_maps``: its ``additionalProperties`` is a schema) stays an object."""
    settings: dict[str, dict[str, Any]] = {}

    def visit(prefix: str, properties: dict[str, Any]) -> None:
        for name, schema in properties.items():
            nested = schema.get("properties")
            free_keys = isinstance(schema.get("additionalProperties"), dict)
            if "object" in _types(schema) and nested and not free_keys:
                visit(f"{prefix}{name}.", nested)
                continue
            setting: dict[str, Any] = {
                "kind": _kind(schema),
                "sensitive": _holds_secret(schema),
            }
            if schema.get("default") is not None:
                setting["value"] = schema["default"]
            if "enum" in schema:
                setting["options"] = sorted(schema["enum"])
            settings[f"{prefix}{name}"] = setting

    visit("", about["settings"]["properties"])
    return settings


def declared_settings(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A plugin definition's settings, in the shape of ``about_settings``."""
    declared = {}
    for setting in definition["settings"]:
        entry: dict[str, Any] = {
            "kind": setting.get("kind", "string"),
            "sensitive": bool(setting.get("sensitive")),
        }
        if "value" in setting:
            entry["value"] = setting["value"]
        if "options" in setting:
            entry["options"] = sorted(option["value"] for option in setting["options"])
        declared[setting["name"]] = entry
    return declared


# ------------------------------------------------------------------ Hub's format


def test_hub_definition_has_the_keys_hub_requires_and_no_others(hub):
    assert set(hub) >= HUB_REQUIRED_KEYS
    assert set(hub) <= HUB_EXTRACTOR_KEYS
    assert set(hub["capabilities"]) <= HUB_CAPABILITIES


def test_hub_definition_settings_use_hub_setting_fields_and_kinds(hub):
    for setting in hub["settings"]:
        assert set(setting) <= HUB_SETTING_KEYS, setting["name"]
        assert setting["kind"] in HUB_SETTING_KINDS, setting["name"]
        assert setting.get("label"), setting["name"]
        assert setting.get("description"), setting["name"]


def test_hub_definition_installs_the_published_package(hub):
    # The installed distribution's metadata is pyproject.toml's [project].
    scripts = {
        entry.name: entry.value
        for entry in metadata.distribution("tap-smartforms").entry_points
        if entry.group == "console_scripts"
    }

    assert hub["pip_url"] == metadata.metadata("tap-smartforms")["Name"]
    assert hub["executable"] in scripts
    assert hub["namespace"] == scripts[hub["executable"]].split(".")[0]


# ------------------------------------------------------------------ the three agree


def test_hub_definition_and_meltano_yml_describe_the_same_extractor(hub, meltano_yml):
    for field in ("name", "namespace", "executable", "settings_group_validation"):
        assert hub[field] == meltano_yml[field], field
    assert sorted(hub["capabilities"]) == sorted(meltano_yml["capabilities"])
    # Labels and descriptions too: the Hub page and `meltano config` say the same.
    assert hub["settings"] == meltano_yml["settings"]


def test_hub_definition_and_meltano_yml_offer_the_same_commands(hub, meltano_yml):
    assert hub["commands"] == meltano_yml["commands"]
    # The command runs the tap's executable with the doctor subcommand.
    assert hub["commands"]["doctor"]["args"].split()[:1] == ["doctor"]
    assert "executable" not in hub["commands"]["doctor"]


def test_meltano_yml_runs_the_working_tree(meltano_yml):
    assert meltano_yml["pip_url"] == "-e ."


def test_settings_names_kinds_and_defaults_match_the_tap_about(about, hub, meltano_yml):
    expected = about_settings(about)

    for definition in (hub, meltano_yml):
        assert declared_settings(definition) == expected


def test_capabilities_match_the_tap_about(about, hub, meltano_yml):
    for definition in (hub, meltano_yml):
        assert sorted(definition["capabilities"]) == sorted(about["capabilities"])


def test_required_settings_match_the_tap_about(about, hub):
    assert hub["settings_group_validation"] == [sorted(about["settings"]["required"])]


def test_secrets_are_sensitive_settings(about, hub):
    # A refresh token inside data_sources makes the whole array a secret for Meltano.
    sensitive = {s["name"] for s in hub["settings"] if s.get("sensitive")}

    assert {"client_secret", "data_sources"} <= sensitive
    assert sensitive == {name for name, s in about_settings(about).items() if s["sensitive"]}


def test_no_setting_uses_the_deprecated_password_kind(hub, meltano_yml):
    for definition in (hub, meltano_yml):
        assert [s["name"] for s in definition["settings"] if s["kind"] == "password"] == []


def _meltano(project: Path, *args: str) -> None:
    dotenv = project / "empty.env"
    dotenv.touch()
    completed = subprocess.run(
        [str(MELTANO_EXECUTABLE), "--env-file", str(dotenv), *args],
        cwd=project,
        env={"PATH": str(Path(sys.executable).parent), "HOME": str(project)}
        | {"MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", "MELTANO_PROJECT_ROOT": str(project)},
        capture_output=True,
        text=True,
        timeout=MELTANO_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]


@pytest.mark.slow
def test_meltano_own_edits_of_meltano_yml_keep_the_definition_as_the_tests_want_it(
    tmp_path, about, hub
):
    # `meltano select` and `meltano config set` write meltano.yml back in their own
    # canonical form (sensitive kinds, key order, line folding): the settings must come
    # out of that unchanged, or a user's first edit would break these tests.
    shutil.copy(REPO_ROOT / "meltano.yml", tmp_path / "meltano.yml")

    _meltano(tmp_path, "--no-environment", "select", "tap-smartforms", "responses", "*")
    _meltano(tmp_path, "--no-environment", "config", "set", "tap-smartforms", "page_size", "100")

    project = yaml.safe_load((tmp_path / "meltano.yml").read_text(encoding="utf-8"))
    rewritten = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-smartforms")
    assert rewritten["select"] == ["responses.*"]  # Meltano did write the file
    assert rewritten["settings"] == hub["settings"]
    assert declared_settings(rewritten) == about_settings(about)
