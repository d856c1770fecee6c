"""Write the quality evidence `rigscope pick` ships (src/rigscope/catalog/evidence.csv) from
the project's quality collection (scripts/data/models_quality.csv, a copy with its sources:
scripts/data/README.md). Run by hand when that collection changes; rigscope reads only the
shipped evidence.csv.

    python scripts/write_evidence.py [scripts/data/models_quality.csv]

One row per (model, benchmark): the model's name and Hub repo as the collection has them, the
rigscope catalog id whose architecture it has (its own entry by Hub alias, else a model with
the same decoder shapes, named in TWINS), the score, its source and date, and whether it is a
third-party measurement or the vendor's model card.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rigscope.catalog import model_aliases, quality  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "src" / "rigscope" / "catalog" / "evidence.csv"
SOURCE = Path(__file__).resolve().parent / "data" / "models_quality.csv"

# Models the collection scores whose decoder has the same layers, widths, heads and vocabulary
# as a catalog entry (fine-tunes and re-releases): their memory and speed are that entry's.
TWINS = {
    "Qwen/QwQ-32B": "qwen2.5-32b",
    "deepseek-ai/DeepSeek-V3.1-Terminus": "deepseek-v3",
    "deepseek-ai/DeepSeek-R1-0528-Qwen3-8B": "qwen3-8b",
    "microsoft/Phi-4-reasoning": "phi-4",
    "microsoft/Phi-4-reasoning-plus": "phi-4",
    "NousResearch/Hermes-4-70B": "llama-3.1-70b",
    "mistralai/Mistral-Small-3.1-24B-Instruct-2503": "mistral-small-24b",
    "mistralai/Mistral-Small-3.2-24B-Instruct-2506": "mistral-small-24b",
    "mistralai/Magistral-Small-2506": "mistral-small-24b",
    "mistralai/Magistral-Small-2509": "mistral-small-24b",
    "mistralai/Devstral-Small-2505": "mistral-small-24b",
    "mistralai/Devstral-Small-2507": "mistral-small-24b",
    "moonshotai/Kimi-K2-Instruct": "kimi-k2.5",
    "moonshotai/Kimi-K2-Instruct-0905": "kimi-k2.5",
    "moonshotai/Kimi-K2-Thinking": "kimi-k2.5",
    "moonshotai/Kimi-K2.6": "kimi-k2.5",
    "zai-org/GLM-5": "glm-5.1",
    "zai-org/GLM-4.7": "glm-4.6",
}


def source_and_date(row: dict[str, str], column: str) -> tuple[str, str]:
    bench = quality().benchmarks[column]
    group = column.split("_")[0] if not column.startswith(("aa_v3", "aa_v4", "livebench_20")) \
        else "_".join(column.split("_")[:2])
    source = row.get(f"{group}_source", "") or bench.source
    date = {"aider": row.get("aider_date"), "card": row.get("release")}.get(group)
    return source, date or bench.date


def main(path: str) -> None:
    aliases = {k.lower(): v for k, v in model_aliases().items()}
    wanted = quality().benchmarks
    out = []
    rows = list(csv.DictReader(Path(path).read_text(encoding="utf-8").splitlines()))
    for row in rows:
        repo = row["hf_repo"]
        target = aliases.get(repo.lower()) or TWINS.get(repo) or ""
        for column in wanted:
            value = row.get(column, "").strip()
            if not value:
                continue
            source, date = source_and_date(row, column)
            variant = row.get("aa_v3_variant", "") if column.startswith("aa_v3") else ""
            out.append({"model": row["model"], "hf_repo": repo, "rigscope_id": target,
                        "twin": "yes" if repo in TWINS else "", "benchmark": column,
                        "score": value, "variant": variant, "date": date, "source": source})
    with OUT.open("w", newline="", encoding="utf-8") as f:
        f.write("# Written by scripts/write_evidence.py; sources and attribution: "
                "docs/evidence.md\n")
        w = csv.DictWriter(f, fieldnames=list(out[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(out)
    print(f"{len(out)} scores of {len({r['model'] for r in out})} models -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(SOURCE))
