"""Frozen copies of replaced code, kept only so benchmarks can compare against it in one run.

Never imported by `shared` (tests/unit/test_contract_schemas.py checks); not maintained beyond
staying importable.
"""
