# The TOML reader against Python's tomllib on valid and invalid documents.
# reactor: none
set -eu
python3 tests/python/toml_vs_tomllib.py "$LBW_HELPERS/toml_json"
