"""The standard LIBSVM sets: where each lives, how big it is, what task it poses, and whom to cite.

Entries are the training files of Chih-Jen Lin's collection
(https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/). ``rows`` and ``features`` are the figures that
page gives for the file; a ``None`` size or sha256 means the figure is not known here, and `fetch` then
skips that check rather than trusting a guess. ``$HOGWILD_LIBSVM_MIRROR`` replaces the base URL (a local
mirror, or a test server); tests may also pass their own registry to `fetch`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

BASE_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/"
MIRROR_ENV = "HOGWILD_LIBSVM_MIRROR"


@dataclass(frozen=True)
class Dataset:
    """One downloadable file. ``path`` is relative to the collection's base URL."""

    name: str
    path: str
    task: str  # "binary", "multiclass" or "regression"
    rows: int | None
    features: int | None
    citation: str
    compressed_size: int | None = None  # bytes of the file as served
    sha256: str | None = None
    classes: int | None = None
    note: str = ""

    @property
    def url(self):
        """The download URL, under $HOGWILD_LIBSVM_MIRROR when that is set."""
        return base_url() + self.path

    @property
    def filename(self):
        return self.path.rsplit("/", 1)[-1]

    def as_dict(self):
        """The entry as JSON-ready data, URL included."""
        return dict(asdict(self), url=self.url, filename=self.filename)


def base_url():
    """The collection's base URL, or $HOGWILD_LIBSVM_MIRROR (with a trailing slash) when set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return BASE_URL
    return mirror if mirror.endswith("/") else mirror + "/"


_PLATT = "J. C. Platt, Fast training of support vector machines using sequential minimal optimization, 1998."
_KEERTHI = ("S. S. Keerthi and D. DeCoste, A modified finite Newton method for fast solution of large scale "
            "linear SVMs, JMLR 6, 2005.")

DATASETS = {
    d.name: d
    for d in (
        Dataset("a9a", "binary/a9a", "binary", 32_561, 123,
                "UCI Adult, preprocessed by " + _PLATT, note="test split: binary/a9a.t (16,281 rows)"),
        Dataset("w8a", "binary/w8a", "binary", 49_749, 300,
                _PLATT, note="test split: binary/w8a.t (14,951 rows)"),
        Dataset("rcv1.binary", "binary/rcv1_train.binary.bz2", "binary", 20_242, 47_236,
                "D. D. Lewis, Y. Yang, T. G. Rose and F. Li, RCV1: A new benchmark collection for text "
                "categorization research, JMLR 5, 2004.",
                note="test split: binary/rcv1_test.binary.bz2 (677,399 rows)"),
        Dataset("news20.binary", "binary/news20.binary.bz2", "binary", 19_996, 1_355_191, _KEERTHI),
        Dataset("news20", "multiclass/news20.bz2", "multiclass", 15_935, 62_061,
                "K. Lang, Newsweeder: Learning to filter netnews, ICML 1995.", classes=20,
                note="test split: multiclass/news20.t.bz2 (3,993 rows)"),
        Dataset("real-sim", "binary/real-sim.bz2", "binary", 72_309, 20_958,
                "A. McCallum (SRAA corpus), preprocessed by " + _KEERTHI),
        Dataset("url", "binary/url_combined.bz2", "binary", 2_396_130, 3_231_961,
                "J. Ma, L. K. Saul, S. Savage and G. M. Voelker, Identifying suspicious URLs: an application of "
                "large-scale online learning, ICML 2009."),
        Dataset("kdda", "binary/kdda.bz2", "binary", 8_407_752, 20_216_830,
                "J. Stamper et al., Algebra I 2008-2009, KDD Cup 2010; features by H.-F. Yu et al., "
                "Feature engineering and classifier ensemble for KDD Cup 2010, 2010.",
                note="test split: binary/kdda.t.bz2"),
        Dataset("webspam", "binary/webspam_wc_normalized_unigram.svm.xz", "binary", 350_000, 254,
                "D. Wang, D. Irani and C. Pu, Evolutionary study of web spam: Webb Spam Corpus 2011 versus "
                "Webb Spam Corpus 2006, 2012; LIBSVM version by De Wang.",
                note="unigram version; the trigram one has 16,609,143 features"),
        Dataset("covtype.binary", "binary/covtype.libsvm.binary.bz2", "binary", 581_012, 54,
                "J. A. Blackard and D. J. Dean, UCI Covertype; binarized by R. Collobert, S. Bengio and "
                "Y. Bengio, A parallel mixture of SVMs for very large scale problems, 2002.",
                note="labels 1/2"),
        Dataset("epsilon", "binary/epsilon_normalized.bz2", "binary", 400_000, 2_000,
                "PASCAL Large Scale Learning Challenge, 2008.",
                note="dense: every row holds all 2,000 features (about 12 GB as text)"),
        Dataset("mnist", "multiclass/mnist.bz2", "multiclass", 60_000, 780,
                "Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, Gradient-based learning applied to document "
                "recognition, Proc. IEEE 86(11), 1998.", classes=10,
                note="labels 0..9; test split: multiclass/mnist.t.bz2 (10,000 rows)"),
    )
}


def get(name, registry=None):
    """The `Dataset` called ``name``, or None."""
    return (DATASETS if registry is None else registry).get(name)


def names(registry=None):
    """Names of the registered sets, in the registry's order."""
    return list(DATASETS if registry is None else registry)


__all__ = ["Dataset", "DATASETS", "BASE_URL", "MIRROR_ENV", "base_url", "get", "names"]
