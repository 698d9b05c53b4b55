"""Kim's text CNN and the word-language data, against explicit computations."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils.data.text import CharVocabulary, load_word_languages
from course_utils.models.text_cnn import KimTextCNN


def test_max_over_time_features_equal_an_explicit_loop():
    torch.manual_seed(0)
    model = KimTextCNN(12, num_classes=3, embed_dim=4, widths=(2, 3), channels=5).eval()
    tokens = torch.randint(0, 12, (3, 7))
    with torch.no_grad():
        got = model.forward_features(tokens)
        emb = model.embed.weight[tokens]  # (N, L, D)
    expected = torch.zeros(3, 10)
    for n in range(3):
        col = 0
        for conv, k in zip(model.convs, model.widths):
            for c in range(5):
                best = -float("inf")
                for t in range(7 - k + 1):  # every window of k consecutive tokens
                    window = emb[n, t:t + k, :]  # (k, D)
                    value = (conv.weight[c].T * window).sum() + conv.bias[c]
                    best = max(best, float(torch.relu(value.detach())))
                expected[n, col] = best
                col += 1
    assert torch.allclose(got, expected, atol=1e-5)
    assert model(tokens).shape == (3, 3)


def test_conv1d_on_a_sequence_is_conv2d_on_an_image_of_width_one():
    torch.manual_seed(1)
    model = KimTextCNN(10, num_classes=2, embed_dim=6, widths=(3,), channels=4)
    x = model.sequence_image(torch.randint(0, 10, (2, 9)))  # (N, D, L)
    conv = model.convs[0]
    as_image = F.conv2d(x[:, :, :, None], conv.weight[:, :, :, None], conv.bias)  # kernel (3, 1) on (N, D, L, 1)
    assert torch.allclose(conv(x), as_image[..., 0], atol=1e-6)


def test_reset_classifier_and_padding_embedding():
    model = KimTextCNN(10, num_classes=4, embed_dim=3, widths=(2,), channels=2)
    assert torch.all(model.embed.weight[0] == 0)  # index 0 pads
    model.reset_classifier(0)
    assert model(torch.randint(0, 10, (2, 5))).shape == (2, 2)
    model.reset_classifier(7)
    assert model(torch.randint(0, 10, (2, 5))).shape == (2, 7)


def test_char_vocabulary_round_trip_and_unknown_characters():
    vocab = CharVocabulary.fit(["abba", "abc"])
    assert vocab.alphabet[:2] == ("a", "b") and len(vocab) == 3 + 2
    x = vocab.encode(["cab", "abzz", "abcabcabc"], max_len=5)
    assert x.shape == (3, 5) and x.dtype == torch.long
    assert vocab.decode(x[0]) == "cab" and x[0, 3:].tolist() == [0, 0]
    assert x[1].tolist()[2:4] == [CharVocabulary.UNKNOWN] * 2
    assert vocab.decode(x[2]) == "abcab"


def test_word_languages_are_unambiguous_and_split_by_word():
    pytest.importorskip("wordfreq")
    data = load_word_languages(("en", "de", "fr"), n_per_language=800, seed=0)
    train, test = set(data.words_train), set(data.words_test)
    assert not train & test
    per_language = [set(np.array(data.words_train + data.words_test)[np.r_[data.y_train, data.y_test] == i])
                    for i in range(3)]
    assert not (per_language[0] & per_language[1]) and not (per_language[0] & per_language[2])
    assert data.dropped_shared > 0  # "die", "in", ... are listed by several languages
    assert all(len(w) >= 3 and w.isalpha() and w == w.lower() for w in train)
    assert np.bincount(data.y_test).min() > 50
    again = load_word_languages(("en", "de", "fr"), n_per_language=800, seed=0)
    assert again.words_test == data.words_test


def test_unknown_language_is_a_clear_error():
    pytest.importorskip("wordfreq")
    from course_utils.data.cache import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="no word list"):
        load_word_languages(("en", "xx-not-a-language"))
