"""The training stages (torch): `adapt` (masked-LM on your texts, optional) and `train` (fine-tuning).

loop.py reads top to bottom; config.py holds every default; state.py makes runs resumable.
"""
