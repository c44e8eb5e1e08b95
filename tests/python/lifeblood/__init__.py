"""Stand-ins for the upstream classes, under their upstream module names, so
the round-trip tests pickle exactly the (module, qualname) pairs the
scheduler uses. Test data only: nothing here is upstream code."""
