"""The LLM-probing chapter: concept directions against concept probes in real language models
(paper section 6, Figure 3, appendices G.2 and J).

- :mod:`ipta.probing.config`: the chapter's parameters;
- :mod:`ipta.probing.alignment`: the paper's and the rigorous protocol on pair representations;
- :mod:`ipta.probing.chapter`: run, tables and figures of notebook ``03_llm_probing``.
"""
