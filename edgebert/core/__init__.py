"""The small core every stage may import: errors, the artifact contract, files, CPU facts, metrics, timing.

Nothing here imports a heavy library; numpy is the most it needs.
"""
