"""Per-document rules: compute signals, compare them with recipe thresholds, keep or drop with a reason.

`build_filters(recipe)` turns the recipe's `filters.order` into filter objects; the pipeline calls them in
that order and the first drop decides the ledger reason.
"""
