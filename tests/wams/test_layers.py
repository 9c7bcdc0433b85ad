"""The layering rules of CONTRIBUTING.md: lower layers import nothing of the layers above them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RULES = {
    "wams/synchrophasor": ("django", "wams.", "dashboards"),
    "wams/detection/analytics": ("django", "wams.grid", "wams.pdc", "wams.historian", "wams.control", "wams.api"),
    "wams/grid": ("wams.pdc", "wams.detection", "wams.control", "wams.api", "dashboards"),
    "wams/historian": ("wams.pdc", "wams.detection", "wams.control", "wams.api", "dashboards"),
    "wams/pdc": ("wams.detection", "wams.control", "wams.api", "dashboards"),
    "wams/detection": ("dashboards",),
    "wams/control": ("dashboards",),
    "wams/api": ("dashboards",),
}
ALLOWED = {"wams/synchrophasor": ("wams.synchrophasor",), "wams/detection/analytics": ("wams.detection.analytics",)}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Return (line, module) of every import in a file, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(RULES))
def test_a_lower_layer_imports_nothing_from_above(package: str) -> None:
    refused, allowed = RULES[package], ALLOWED.get(package, ())
    offences = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for line, module in _imports(path):
            name = module + "."
            if any(name.startswith(r if r.endswith(".") else r + ".") for r in refused) and not any(
                name.startswith(a + ".") for a in allowed
            ):
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offences, "\n".join(offences)


PUBLISHERS = ("publish", "apublish", "publish_now", "group_send")  # wams.live's and the channel layer's senders


def _channel_layer_sends(path: Path) -> list[tuple[int, str]]:
    """Return (line, what) of every publishing call or reference, and every import of one, in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in PUBLISHERS:
            found.append((node.lineno, f"uses {node.attr}"))
        elif isinstance(node, ast.Attribute) and node.attr == "send":
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name == "channel_layer":  # self.channel_layer.send(channel, ...): a message to another consumer
                found.append((node.lineno, "calls channel_layer.send"))
        elif isinstance(node, ast.ImportFrom) and node.module in ("wams.live", "channels.layers"):
            for alias in node.names:
                if alias.name in PUBLISHERS or alias.name == "get_channel_layer":
                    found.append((node.lineno, f"imports {alias.name} from {node.module}"))
        elif isinstance(node, ast.Name) and node.id in ("apublish", "group_send", "get_channel_layer"):
            found.append((node.lineno, f"uses {node.id}"))
    return found


def test_nothing_under_dashboards_publishes_to_the_channel_layer() -> None:
    """The pages only subscribe (group_add/group_discard in the consumers); only wams.live publishes."""
    offences = [
        f"{path.relative_to(ROOT)}:{line} {what}"
        for path in sorted((ROOT / "dashboards").rglob("*.py"))
        for line, what in _channel_layer_sends(path)
    ]
    assert not offences, "\n".join(offences)


def test_the_publishing_check_finds_the_fake_pdc_of_the_tests() -> None:
    """The check catches what the synthetic feed does (it lived under dashboards/ before it moved to tests/)."""
    found = _channel_layer_sends(ROOT / "tests" / "dashboards" / "synthetic.py")
    assert any(what == "uses apublish" for _line, what in found), found
