"""The README's table of rule keys is generated from the config classes (the core's docgen
flattens nested tables but not lists of tables, so this plugin checks its own second table)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from triogate import docgen
from triogate_traffic_split import RuleConfig, WeightedUpstream

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- rules-table:start -->\n)(.*?)(<!-- rules-table:end -->)", re.DOTALL)


def rules_table() -> str:
    rules = docgen.config_table(RuleConfig, "rules[].")
    upstreams = docgen.config_table(WeightedUpstream, "rules[].upstreams[].").split("\n", 2)[2]
    return f"{rules}\n{upstreams}\n"


def test_rules_table_is_current() -> None:
    m = BLOCK.search(README.read_text())
    assert m is not None, "README.md lacks the rules-table markers"
    assert m.group(2) == rules_table(), f"run: .venv/bin/python {Path(__file__).relative_to(Path.cwd())} (rewrites it)"


if __name__ == "__main__":  # rewrite the table in place
    text = README.read_text()
    README.write_text(BLOCK.sub(lambda m: m.group(1) + rules_table() + m.group(3), text))
    sys.exit(0)
