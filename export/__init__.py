"""Keras run folder in, the ONNX file the bot runs out: converted, checked, optionally quantized.

TensorFlow, tf2onnx and onnxruntime's quantization tools live here (and in training/) only;
the bot and the contract never import them.
"""
