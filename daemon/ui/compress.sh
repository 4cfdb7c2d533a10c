#!/bin/sh
# Makes the .gz of each page file, as the daemon embeds and sends them
# (api/ui/mod.rs). -n: no name or time inside, so the output is reproducible;
# a unit test (api::ui::tests::gzip_assets_are_current) fails when one is stale.
set -eu
cd "$(dirname "$0")"
for f in index.html ui.js ui.css; do
    gzip -9 -n -c "$f" > "$f.gz"
done
