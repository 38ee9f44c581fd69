"""Model files: round trips, checksums, versions, feature-count mismatches."""

import json
import zipfile

import numpy as np
import pytest

import hogwild
from hogwild.errors import DataError, ModelFormatError
from hogwild.model_io import load_model, save_model
from conftest import make_sparse_classification


@pytest.fixture(scope="module")
def trained():
    X, y = make_sparse_classification(200, 12, seed=3)
    return X, hogwild.train(X, y, mode="serial", epochs=2).model


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "strings"])
def test_round_trip_predicts_identically(tmp_path, kind):
    X, y = make_sparse_classification(200, 12, seed=3)
    extra = {}
    if kind == "multiclass":
        y = np.asarray(np.argmax(X[:, :3].toarray(), axis=1))
        extra = {"multiclass": "softmax"}
    elif kind == "regression":
        y = np.asarray(X.sum(axis=1)).ravel()
        extra = {"loss": "squared_error"}
    elif kind == "strings":
        y = np.where(y > 0, "yes", "no")
    model = hogwild.train(X, y, mode="serial", epochs=2, **extra).model
    path = tmp_path / "model.npz"
    model.save(path)
    again = load_model(path)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(again.decision_function(X), model.decision_function(X))
    assert again.meta()["config"] == model.meta()["config"]


def _rewrite(path, target, edit):
    with np.load(path, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    edit(members)
    with open(target, "wb") as handle:
        np.savez(handle, **members)


def test_edited_weights_fail_the_checksum(tmp_path, trained):
    _, model = trained
    path, edited = tmp_path / "m.npz", tmp_path / "edited.npz"
    save_model(model, path)

    def edit(members):
        members["coef"] = members["coef"] + 1

    _rewrite(path, edited, edit)
    with pytest.raises(ModelFormatError, match="checksum") as info:
        load_model(edited)
    assert str(edited) in str(info.value)


def test_wrong_version_truncated_and_missing_files(tmp_path, trained):
    _, model = trained
    path = tmp_path / "m.npz"
    save_model(model, path)

    def bump(members):
        header = json.loads(members["__header__"].tobytes())
        header["format_version"] = 99
        members["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

    _rewrite(path, tmp_path / "v99.npz", bump)
    with pytest.raises(ModelFormatError, match="version 99"):
        load_model(tmp_path / "v99.npz")
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFormatError, match="cut.npz"):
        load_model(tmp_path / "cut.npz")
    with pytest.raises(ModelFormatError, match="not found"):
        load_model(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelFormatError):
        load_model(tmp_path / "text.npz")


def test_no_pickle_inside(tmp_path, trained):
    _, model = trained
    path = tmp_path / "m.npz"
    save_model(model, path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["__header__.npy", "classes.npy", "coef.npy", "intercept.npy"]
    np.load(path, allow_pickle=False).close()


def test_extra_features_raise_or_are_dropped(trained):
    X, model = trained
    import scipy.sparse as sp

    wider = sp.hstack([X, sp.random(X.shape[0], 3, density=0.5, format="csr", random_state=0)]).tocsr()
    with pytest.raises(DataError, match="15 features.*12"):
        model.predict(wider)
    np.testing.assert_array_equal(model.predict(wider, ignore_extra_features=True), model.predict(X))
    narrower = X[:, :10]
    assert model.predict(narrower).shape == (X.shape[0],)


def test_predict_proba_unavailable_for_hinge():
    X, y = make_sparse_classification(100, 5)
    model = hogwild.train(X, y, loss="hinge", mode="serial", epochs=1).model
    assert not model.has_proba
    with pytest.raises(AttributeError, match="hinge"):
        model.predict_proba(X)


def _tiny_model(tmp_path):
    import hogwild
    from hogwild.model_io import save_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    path = tmp_path / "model.npz"
    save_model(hogwild.train(X, y, mode="serial", epochs=1).model, path)
    return path


def test_renamed_member_is_a_format_error_not_a_crash(tmp_path):
    """Found by fuzzing: NpzFile returns raw bytes for a member whose name does not end in .npy."""
    import zipfile

    from hogwild.errors import ModelFormatError
    from hogwild.model_io import load_model

    path = _tiny_model(tmp_path)
    edited = tmp_path / "edited.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(edited, "w") as target:
        for info in source.infolist():
            name = info.filename[:-4] + ".bin" if info.filename.endswith(".npy") else info.filename
            target.writestr(name, source.read(info.filename))
    with pytest.raises(ModelFormatError, match="edited.npz"):
        load_model(edited)


def test_damaged_npy_header_is_a_format_error_not_a_crash(tmp_path):
    """Found by fuzzing: NumPy's .npy header parser raises tokenize errors for an edited header."""
    import zipfile

    from hogwild.errors import ModelFormatError
    from hogwild.model_io import load_model

    path = _tiny_model(tmp_path)
    edited = tmp_path / "edited.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(edited, "w") as target:
        for info in source.infolist():
            raw = source.read(info.filename)
            if info.filename.endswith(".npy"):
                raw = raw.replace(b"{", b"{(", 1)  # an unclosed bracket in the header dict
            target.writestr(info.filename, raw)
    with pytest.raises(ModelFormatError, match="edited.npz"):
        load_model(edited)
