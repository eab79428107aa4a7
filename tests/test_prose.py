"""Specification of ipta.prose: one syntax for numbers in the prose, {eval}`v["key:spec"]`,
read in JupyterLab from the kernel's glued values, in the book and in a published notebook's
metadata from the values glued in it."""

import nbformat
import numpy as np
import pytest

from ipta import prose


def test_glued_numpy_scalars_become_python_numbers_and_join_the_kernels_values():
    values = prose.glue_values({"n": np.int64(3), "x": np.float32(0.5), "ok": np.bool_(True),
                                "text": "abc"})
    assert values == {"n": 3, "x": 0.5, "ok": True, "text": "abc"}
    assert [type(v) for v in values.values()] == [int, float, bool, str]
    assert repr(prose.GLUED["x:.3f"]) == "0.500" and repr(prose.GLUED["text"]) == "abc"


@pytest.mark.parametrize("item,text", [("gap:.3f", "0.123"), ("gap:+.1%", "+12.3%"),
                                       ("n:d", "27"), ("gap", "0.123456"),
                                       ("verdict:md", "holds by construction")])
def test_a_value_is_shown_formatted_without_quotes(item, text):
    v = prose.Glued(gap=0.123456, n=27, verdict="holds *by construction*")
    assert repr(v[item]) == text
    assert v["verdict:md"]._repr_markdown_() == "holds *by construction*"


def test_a_sentence_of_plain_words_is_plain_text_and_one_with_markup_keeps_its_markdown():
    """JupyterLab sets a Markdown result as a paragraph of its own: plain words go as text, so
    the sentence around them stays one line; a sentence with markup keeps its Markdown."""
    v = prose.Glued(order="top-k > batch-top-k", model="`smollm2-135m`")
    assert repr(v["order:md"]) == "top-k > batch-top-k"
    assert v["order:md"]._repr_markdown_() is None
    assert v["model:md"]._repr_markdown_() == "`smollm2-135m`"
    assert repr(v["model:md"]) == "smollm2-135m"


def test_an_unknown_name_or_another_expression_says_what_to_do():
    with pytest.raises(KeyError, match="'gap' is not computed yet: run the cells above"):
        prose.Glued()["gap:.3f"]
    with pytest.raises(ValueError, match=r'the book reads only v\["key"\] or v\["key:format"\]'):
        prose.parse("round(v['gap'], 3)")
    assert prose.parse(' v["gap:.3f"] ') == ("gap", ".3f")


def _glued_output(name, value):
    return nbformat.v4.new_output("display_data", data={
        "application/papermill.record/text/plain": repr(value)},
        metadata={"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}})


def test_a_published_notebook_carries_each_cells_results_as_jupyterlab_myst_stores_them():
    code = nbformat.v4.new_code_cell("glue", outputs=[_glued_output("gap", 0.123456),
                                                      _glued_output("model", "smollm2")])
    text = nbformat.v4.new_markdown_cell('Gap {eval}`v["gap:.2f"]` for {eval}`v["model"]`, '
                                         'and {eval}`v["missing:.1f"]`.')
    plain = nbformat.v4.new_markdown_cell("No numbers here.")
    nb = prose.with_user_expressions(nbformat.v4.new_notebook(cells=[code, text, plain]))
    stored = nb.cells[1].metadata["user_expressions"]
    assert [s["expression"] for s in stored] == ['v["gap:.2f"]', 'v["model"]', 'v["missing:.1f"]']
    assert stored[0]["result"] == {"status": "ok", "metadata": {}, "data": {"text/plain": "0.12"}}
    assert stored[1]["result"]["data"]["text/plain"] == "smollm2"
    assert stored[2]["result"]["status"] == "error" and "missing" in stored[2]["result"]["evalue"]
    assert "user_expressions" not in nb.cells[2].metadata


def test_a_markdown_sentence_is_shown_as_its_text_in_the_kernel_and_the_published_notebook():
    """A glued Markdown sentence is quoted as its words, never as the display object's repr
    ("<IPython.core.display.Markdown object>"), live and from a published notebook."""
    from IPython.display import Markdown

    prose.glue_values({"verdict": Markdown("holds *by construction*")})
    assert repr(prose.GLUED["verdict:md"]) == "holds by construction"
    glued = nbformat.v4.new_output("display_data", data={
        "application/papermill.record/text/markdown": "holds *by construction*",
        "application/papermill.record/text/plain": "<IPython.core.display.Markdown object>"},
        metadata={"scrapbook": {"name": "verdict", "mime_prefix": "application/papermill.record/"}})
    code = nbformat.v4.new_code_cell("glue", outputs=[glued])
    text = nbformat.v4.new_markdown_cell('It {eval}`v["verdict:md"]`.')
    nb = prose.with_user_expressions(nbformat.v4.new_notebook(cells=[code, text]))
    assert prose.glued_in(nb) == {"verdict": "holds *by construction*"}
    data = nb.cells[1].metadata["user_expressions"][0]["result"]["data"]
    assert data == {"text/plain": "holds by construction", "text/markdown": "holds *by construction*"}
