"""The CIFAR-10 reader, on miniature files written in the exact `cifar-10-batches-py` format.

The real folder holds data_batch_1..5 and test_batch (pickled dicts: b"data" uint8 (10000, 3072)
rows of 1024 red, 1024 green, 1024 blue values, each a 32x32 image row by row; b"labels" a list of
ints; plus b"batch_label" and b"filenames") and batches.meta (b"label_names"). Ours are the same
with a few images per file.
"""
import pickle

import numpy as np
import pytest

from tinytorch.core.dataloader import CIFAR10_URL, CIFAR10Dataset, DataLoader

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar(root, per_file=3, seed=0):
    """Write a miniature cifar-10-batches-py under root; return {file name: (data, labels)}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written = {}
    for name in FILES:
        data = rng.integers(0, 256, size=(per_file, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_file).tolist()
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(per_file)]}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))  # the originals are protocol 2
        written[name] = (data, labels)
    meta = {b"num_cases_per_batch": per_file, b"label_names": [n.encode() for n in NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def test_reads_the_training_batches_in_order(tmp_path):
    written = write_cifar(tmp_path)
    train = CIFAR10Dataset(tmp_path, train=True)
    assert len(train) == 15 and train.classes == NAMES
    data = np.concatenate([written[name][0] for name in FILES[:5]])
    labels = sum((written[name][1] for name in FILES[:5]), [])
    assert train.labels.tolist() == labels and train.labels.dtype == np.int64
    image, label = train[7]
    assert image.shape == (3, 32, 32) and image.dtype == np.float32 and label == labels[7]
    np.testing.assert_allclose(image, data[7].reshape(3, 32, 32) / 255.0, rtol=1e-6)


def test_pixel_layout_is_channel_then_row_then_column(tmp_path):
    written = write_cifar(tmp_path)
    data = written["test_batch"][0]
    image, _ = CIFAR10Dataset(tmp_path, train=False)[1]
    for channel, y, x in [(0, 0, 0), (0, 0, 31), (1, 5, 7), (2, 31, 31), (2, 10, 3)]:
        assert image[channel, y, x] == np.float32(data[1, channel * 1024 + y * 32 + x] / 255.0)


def test_test_split_and_the_folder_itself(tmp_path):
    written = write_cifar(tmp_path)
    test = CIFAR10Dataset(tmp_path / "cifar-10-batches-py", train=False)  # the folder itself works too
    assert len(test) == 3 and test.labels.tolist() == written["test_batch"][1]


def test_batches_through_the_dataloader(tmp_path):
    written = write_cifar(tmp_path, per_file=4)
    loader = DataLoader(CIFAR10Dataset(tmp_path), batch_size=8, shuffle=True, seed=0)
    batches = list(loader)
    assert [x.shape for x, _ in batches] == [(8, 3, 32, 32)] * 2 + [(4, 3, 32, 32)]
    x, y = batches[0]
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.data.min() and x.data.max() <= 1.0
    all_labels = sorted(sum((written[name][1] for name in FILES[:5]), []))
    assert sorted(label for _, y in batches for label in y.data.tolist()) == all_labels


def test_missing_folder_says_how_to_get_the_data(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        CIFAR10Dataset(tmp_path / "no-such-folder")
    message = str(error.value)
    assert CIFAR10_URL in message and "tar xzf" in message and "no-such-folder" in message


def test_missing_file_is_named(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        CIFAR10Dataset(tmp_path)
    assert len(CIFAR10Dataset(tmp_path, train=False)) == 3  # the test split does not need it
