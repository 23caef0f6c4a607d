"""`python -m bench.cost`: docs/COST.md's generated tables rewritten from bench/cost/inputs.json,
the prices and terraform's sizes; `--check` exits 1 when the committed doc differs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cost import doc, model
from bench.cost.inputs import INPUTS_PATH, load_inputs
from bench.cost.sizes import MAIN_TF, function_sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    parser.add_argument("--inputs", type=Path, default=INPUTS_PATH)
    parser.add_argument("--doc", type=Path, default=doc.COST_DOC)
    parser.add_argument(
        "--terraform", type=Path, default=MAIN_TF, help="main.tf to read sizes from"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc is out of date")
    args = parser.parse_args(argv)

    inputs, sizes = load_inputs(args.inputs), function_sizes(args.terraform)
    batched = model.traffics(inputs.mixes)["batched"]
    for volume in model.VOLUMES:
        bill = model.cheapest_bill(batched, volume, sizes)
        store = model.chosen_store(batched, volume, sizes)
        print(
            f"{volume:>13,} events, batched: ${bill.total:,.2f} (${bill.per_million:.2f}/M), "
            f"{store}"
        )
    for target in model.targets(batched, sizes):
        verdict = "true" if target.met else "false"
        print(f"target {target.name}: {target.value:,.2f} <= {target.limit:.2f} met: {verdict}")

    current = args.doc.read_text()
    wanted = doc.render(current, inputs, sizes)
    if args.check:
        if wanted != current:
            print(f"{args.doc} is out of date: run python -m bench.cost", file=sys.stderr)
            return 1
        print(f"{args.doc} is up to date")
        return 0
    if wanted != current:
        args.doc.write_text(wanted)
        print(f"rewrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
