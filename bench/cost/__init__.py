"""The cost model (docs/COST.md): measured inputs (inputs.json), list prices (prices.py), the
model (model.py, rudderstack.py) and the doc's generated tables (doc.py); `python -m bench.cost`."""
