"""The models: pretrained encoders from registry packages, the torch classifiers built on them, and the
checkpoint directory `train` writes and `export` reads. Only `models.py` imports torch."""
