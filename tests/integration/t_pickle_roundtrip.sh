# 1,000 random object graphs x pickle protocols 2-5 through the C codec and
# back into Python: values, types, sharing and cycles must survive.
# reactor: none
set -eu
python3 tests/python/pickle_roundtrip.py "$LBW_HELPERS/pk_roundtrip" 1000
