"""The deployed functions' sizes, read from terraform/main.tf's `local.functions` (python-hcl2),
so the cost model bills what Terraform deploys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

MAIN_TF = Path(__file__).resolve().parents[2] / "terraform" / "main.tf"
MEMORY = re.compile(r"(\d+)(Mi|Gi)")


@dataclass(frozen=True)
class FunctionSize:
    vcpu: float
    memory_gib: float
    concurrency: int
    min_instances: int


def _unquote(value: Any) -> str:
    # python-hcl2 keeps the quotes of string literals (version-dependent): strip them.
    return str(value).strip('"')


def memory_gib(memory: str) -> float:
    """Cloud Run's memory setting ("512Mi", "2Gi") in GiB."""
    match = MEMORY.fullmatch(memory)
    if match is None:
        raise ValueError(f"unrecognised memory size {memory!r}")
    amount, unit = int(match[1]), match[2]
    return amount / 1024 if unit == "Mi" else float(amount)


def size_from_hcl(size: dict[str, Any]) -> FunctionSize:
    return FunctionSize(
        vcpu=float(_unquote(size["cpu"])),
        memory_gib=memory_gib(_unquote(size["memory"])),
        concurrency=int(size["concurrency"]),
        min_instances=int(size["min_instances"]),
    )


def function_sizes(main_tf: Path = MAIN_TF) -> dict[str, FunctionSize]:
    """Every function's default size (before `var.function_sizes` overrides), by name."""
    with main_tf.open() as handle:
        parsed = hcl2.load(handle)
    for block in parsed.get("locals", []):
        if "functions" in block:
            return {
                _unquote(name): size_from_hcl(function["size"])
                for name, function in block["functions"].items()
            }
    raise ValueError(f"{main_tf} has no local.functions")
