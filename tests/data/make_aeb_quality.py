"""Build aeb_quality.jsonl.gz: article bodies vs page boilerplate from the scrapinghub
article-extraction-benchmark (MIT). Run once; the output is committed.

    python tests/data/make_aeb_quality.py /path/to/scrapinghub-aeb tests/data/aeb_quality.jsonl.gz

Each page gives two documents: ``article`` (its ground-truth body, first 3000 characters)
and ``boilerplate`` (the lines of the whole page's text that are not in the body: menus,
footers, related links, cookie notices).
"""

import gzip
import json
import sys
from pathlib import Path

from resiliparse.extract.html2text import extract_plain_text


def main(src: str, out: str) -> None:
    src_path = Path(src)
    truth = json.loads((src_path / "ground-truth.json").read_text())
    rows = []
    for sha, item in sorted(truth.items()):
        body = item["articleBody"].strip()
        html = gzip.open(src_path / "html" / f"{sha}.html.gz", "rt", encoding="utf-8", errors="replace").read()
        page = extract_plain_text(html, main_content=False, alt_texts=False, links=False)
        body_lines = {ln.strip() for ln in body.splitlines() if ln.strip()}
        boiler = [ln.strip() for ln in page.splitlines() if ln.strip() and ln.strip() not in body_lines]
        boiler = [ln for ln in boiler if not any(ln in b for b in body_lines if len(ln) > 40)]
        rows.append({"id": f"{sha[:16]}-a", "url": item["url"], "kind": "article", "text": body[:3000]})
        text = "\n".join(boiler)[:3000]
        if len(text) >= 100:
            rows.append({"id": f"{sha[:16]}-b", "url": item["url"], "kind": "boilerplate", "text": text})
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} documents to {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
