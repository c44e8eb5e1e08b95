# The TOML reader against Python's tomllib on valid and invalid documents.
# reactor: none
set -eu
. "$(dirname "$0")/lib.sh"
python3 -c 'import tomllib' 2>/dev/null || skip "$(python3 -V 2>&1) has no tomllib (needs 3.11)"
python3 tests/python/toml_vs_tomllib.py "$LBW_HELPERS/toml_json"
