"""The export stage: checkpoint -> ONNX -> parity -> fusions or OpenVINO IR -> INT8 -> verified artifact.

Where things are decided: recipes.py (which quantization settings, from the CPU or the flags), quantize.py
(how ONNX Runtime quantizes), accuracy_budget.py (what goes back to fp32), pipeline.py (the stages in order).
"""
