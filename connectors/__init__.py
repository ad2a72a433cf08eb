"""Connectors: outside bytes -> documents (JSONL, Parquet, WARC/ARC, Common Crawl listings, HTML -> text)."""
