#!/bin/sh
# Regenerates the pandoc pages from notes.md (written for these tests, project license).
# Made with Debian's pandoc 2.17.1.1: `apt-get install pandoc`. The tests read the committed
# HTML and do not need pandoc.
set -e
cd "$(dirname "$0")"
for mode in katex mathjax webtex mathml; do
  pandoc -s --metadata title="Notes on series" "--$mode" notes.md -o "pandoc-$mode.html"
done
