#!/usr/bin/env bash
# What our hand-written parts save in the router binary against the crates a
# reviewer would have used, in one run. REV is built as it is, then once per
# variant with a throw-away patch:
#   regex-lite   dns/regex.rs's `Regex` becomes a wrapper of regex_lite::Regex
#   regex        the same with the `regex` crate (default features)
#   maxminddb    sources/mmdb.rs's `extract` walks the maxminddb crate's networks
#   hickory      hickory-proto linked in beside our dns/wire.rs (a message
#                decoded and encoded in parse_query, behind a branch never taken
#                at run time but that the compiler cannot remove): hickory's own
#                cost; hickory-server would add its server on top
# In the first three, ours is left unreferenced, so LTO drops it: the difference
# is (crate) - (ours). The crates' versions are the ones the oracle tests pin
# (daemon/Cargo.toml [dev-dependencies]), regex-lite the newest 0.1.
#
#   tests/bench/deps_size.sh [--target TRIPLE] [REV] [VARIANT...]
#
# Default target mipsel-unknown-linux-musl (the router's; needs what
# image/cross-build.sh installs: run it once first); x86_64-unknown-linux-musl
# builds with stable only. REV defaults to HEAD. Prints one table: bytes stripped
# and xz -9e, and each variant's difference to ours.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=mipsel-unknown-linux-musl
if [ "${1:-}" = --target ]; then TARGET=$2; shift 2; fi
REV=${1:-HEAD}
[ $# -gt 0 ] && shift
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=(regex-lite regex maxminddb hickory)
sha=$(git -C "$ROOT" rev-parse --short "$REV")

. "$ROOT/tests/lib/size_build.sh"
size_workdir wsz-deps

# The version of a crate in daemon/Cargo.toml's [dev-dependencies].
dev_version() {
    sed -n "/^\[dev-dependencies\]/,/^\[/p" "$ROOT/daemon/Cargo.toml" |
        sed -n "s/^$1 = .*\"\([0-9][0-9.]*\)\".*/\1/p" | head -1
}

# patch VARIANT TREE: the variant's source change (the crate is added by cargo).
patch_tree() {
    python3 - "$1" "$2" <<'PY'
import re, sys
variant, tree = sys.argv[1], sys.argv[2]
def edit(rel, fn):
    p = f"{tree}/daemon/src/{rel}"
    s = open(p).read()
    t = fn(s)
    assert t != s, f"{rel}: the patch for {variant} found nothing to change: update it"
    open(p, "w").write(t)

if variant in ("regex-lite", "regex"):
    krate = variant.replace("-", "_")
    def regex(s):
        s = re.sub(r"\bRegex\b", "OurRegex", s)
        return s + f"""
/// The {variant} crate in place of ours (names are lowercase; letters in an
/// expression match either case, as in ours).
#[derive(Debug, Clone)]
pub struct Regex({krate}::Regex);

impl Regex {{
    pub fn new(text: &str) -> Result<Self, String> {{
        {krate}::RegexBuilder::new(text)
            .case_insensitive(true)
            .build()
            .map(Self)
            .map_err(|e| e.to_string())
    }}

    pub fn is_match(&self, name: &[u8]) -> bool {{
        std::str::from_utf8(name).is_ok_and(|s| self.0.is_match(s))
    }}
}}
"""
    edit("dns/regex.rs", regex)
elif variant == "maxminddb":
    def mmdb(s):
        s = s.replace("pub fn extract(", "pub fn extract_ours(", 1)
        return s + """
/// The maxminddb crate in place of ours: every network, the country of each
/// distinct record decoded once, as ours reads it.
pub fn extract(
    path: &Path,
    wanted: Option<&HashSet<[u8; 2]>>,
    out: &mut HashMap<[u8; 2], CountryBuilder>,
) -> Result<Metadata, SourceError> {
    let err = |e: maxminddb::MaxMindDbError| SourceError::Format(e.to_string());
    let reader = maxminddb::Reader::open_readfile(path).map_err(err)?;
    let mut seen: HashMap<usize, Option<[u8; 2]>> = HashMap::new();
    for item in reader.networks(Default::default()).map_err(err)? {
        let r = item.map_err(err)?;
        let Some(off) = r.offset() else { continue };
        let cc = *seen.entry(off).or_insert_with(|| {
            let get = |p: &[maxminddb::PathElement<'_>]| {
                r.decode_path::<String>(p).ok().flatten().and_then(|s| code(&s))
            };
            get(&maxminddb::path!["country", "iso_code"])
                .or_else(|| get(&maxminddb::path!["country_code"]))
                .or_else(|| get(&maxminddb::path!["registered_country", "iso_code"]))
        });
        let Some(cc) = cc else { continue };
        if wanted.is_some_and(|w| !w.contains(&cc)) {
            continue;
        }
        let net = r.network().map_err(err)?;
        out.entry(cc).or_default().push_cidr(net.ip(), u32::from(net.prefix()));
    }
    let m = reader.metadata();
    Ok(Metadata {
        node_count: m.node_count,
        record_size: u32::from(m.record_size),
        ip_version: u32::from(m.ip_version),
        database_type: m.database_type.clone(),
        decode_steps: 0,
    })
}
"""
    edit("sources/mmdb.rs", mmdb)
elif variant == "hickory":
    def wire(s):
        anchor = "pub fn parse_query(b: &[u8]) -> Result<Query, WireError> {\n"
        assert anchor in s, "parse_query not found: update the probe"
        return s.replace(anchor, anchor + """    if std::env::var_os("WGSPLIT_SIZE_PROBE_NEVER_SET").is_some() {
        if let Ok(mut m) = hickory_proto::op::Message::from_vec(b) {
            let names: usize = m.all_sections().map(|r| r.name.len()).sum();
            m.metadata.message_type = hickory_proto::op::MessageType::Response;
            m.metadata.response_code = hickory_proto::op::ResponseCode::ServFail;
            let out = std::hint::black_box(m.to_vec());
            return Err(if out.is_ok() && names > 0 { WireError::Short } else { WireError::BadName });
        }
    }
""", 1)
    edit("dns/wire.rs", wire)
else:
    sys.exit(f"unknown variant {variant}")
PY
}

add_crate() {
    local variant=$1 tree=$2
    case "$variant" in
    regex-lite) (cd "$tree/daemon" && cargo add --quiet regex-lite@0.1) ;;
    regex) (cd "$tree/daemon" && cargo add --quiet "regex@$(dev_version regex)") ;;
    maxminddb) (cd "$tree/daemon" && cargo add --quiet "maxminddb@$(dev_version maxminddb)") ;;
    hickory) (cd "$tree/daemon" && cargo add --quiet "hickory-proto@$(dev_version hickory-proto)" \
        --no-default-features --features std) ;;
    esac
}

ROWS=()
for variant in ours "${VARIANTS[@]}"; do
    tree=$WORK/$variant
    size_worktree "$tree" "$sha"
    if [ "$variant" != ours ]; then
        patch_tree "$variant" "$tree"
        add_crate "$variant" "$tree" >"$WORK/add-$variant.log" 2>&1 || { cat "$WORK/add-$variant.log" >&2; exit 1; }
    fi
    sx=$(size_cross "$tree" "$variant" "$TARGET" 30)
    read -r s x <<<"$sx"
    ROWS+=("$variant"$'\t'"$s"$'\t'"$x")
done

echo
echo "| $TARGET at $sha | stripped (B) | xz -9e (B) | stripped vs ours | xz vs ours |"
echo "|---|---|---|---|---|"
IFS=$'\t' read -r _ s0 x0 <<<"${ROWS[0]}"
for row in "${ROWS[@]}"; do
    IFS=$'\t' read -r v s x <<<"$row"
    awk -v v="$v" -v s="$s" -v x="$x" -v s0="$s0" -v x0="$x0" 'BEGIN {
        label = (v == "ours") ? "ours (as shipped)" : (v == "hickory") ? "+ hickory-proto beside ours" : v " in place of ours"
        printf "| %s | %d | %d | %+.1f KB | %+.1f KB |\n", label, s, x, (s-s0)/1024, (x-x0)/1024 }'
done
