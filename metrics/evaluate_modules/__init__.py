"""``evaluate`` measurement modules of the reference-free metrics, shipped inside the package.

Each module wraps one function of :mod:`metrics` for users of Hugging Face ``evaluate``; load it
by path (offline: nothing is fetched from the hub) and call ``compute`` with the texts as
``data`` and the function's options as keywords::

    import evaluate
    from metrics.evaluate_modules import path

    distinct = evaluate.load(path("distinct_n"))
    distinct.compute(data=["the cat sat", "the cat ran"], n=2)   # {'distinct_n': 0.75}

``python -m metrics.evaluate_modules`` prints every module's path.

==================  =====================================  ========================================
module              value (key of the result)              options
==================  =====================================  ========================================
``distinct_n``      :func:`metrics.distinct_n`             ``n`` (1)
``self_bleu``       :func:`metrics.self_bleu`              ``n`` (4), ``smoothing``, ``sample_size``,
                                                           ``seed``
``entropy``         :func:`metrics.ngram_entropy` (bits)   ``n`` (1)
``homogenization``  :func:`metrics.homogenization`         ``measure`` (``rouge_l``)
``div_sem``         :func:`metrics.semantic_diversity`     ``model_name``, ``batch_size``
                    (needs ``lm-collapse[embeddings]``)
``div_syn``         :func:`metrics.syntactic_diversity`    ``n_iter`` (2), ``model``
                    (needs ``lm-collapse[spacy]``)
==================  =====================================  ========================================

The values are exactly those of the wrapped functions on the same texts and options (tested).
``evaluate`` itself is the extra ``lm-collapse[evaluate]`` (lm-eval installs it too).
"""
from __future__ import annotations

from pathlib import Path

#: The shipped measurement modules (each a folder ``<name>/<name>.py`` beside this file).
NAMES = ("distinct_n", "self_bleu", "entropy", "homogenization", "div_sem", "div_syn")


def path(name: str) -> str:
    """The folder of measurement module ``name``, for ``evaluate.load(path(name))``.

    Examples
    --------
    >>> Path(path("self_bleu")).name, (Path(path("self_bleu")) / "self_bleu.py").is_file()
    ('self_bleu', True)
    """
    if name not in NAMES:
        raise ValueError(f"no evaluate module {name!r}; choose one of: {', '.join(NAMES)}")
    return str(Path(__file__).resolve().parent / name)


def info(doc: str, citation: str, options: str):
    """The ``evaluate.MeasurementInfo`` of a module: its docstring, a citation, texts as ``data``."""
    import datasets
    import evaluate

    return evaluate.MeasurementInfo(
        module_type="measurement",
        description=doc,
        citation=citation,
        inputs_description=f"data: list of str, the texts (one corpus). Options: {options}.",
        features=datasets.Features({"data": datasets.Value("string")}),
    )
