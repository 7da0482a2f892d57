"""The course manifest: sixteen modules in five stages, names resolved the way learners type them."""
import pytest

from tito import manifest

from .conftest import ROOT

COURSE = manifest.load(ROOT)


def test_sixteen_modules_in_five_stages_with_checkpoints_00_to_15():
    assert [s.name for s in COURSE.stages] == [
        "Foundation", "Neural Architecture", "Training", "Inference Deployment", "Language Models",
    ]  # fmt: skip
    assert [len(s.modules) for s in COURSE.stages] == [3, 4, 4, 4, 1]
    assert [c.id for c in COURSE.checkpoints] == [f"{i:02d}" for i in range(16)]
    assert COURSE.find_module("09_autograd").checkpoint.name == "differentiation"


@pytest.mark.parametrize("name", ["09_autograd", "autograd", "09", "9", " Autograd "])
def test_module_names_learners_type(name):
    assert COURSE.find_module(name).id == "09_autograd"


@pytest.mark.parametrize("name", ["8", "08", "differentiation"])
def test_checkpoint_ids(name):
    assert COURSE.find_checkpoint(name).id == "08"


def test_unknown_names_suggest_the_closest():
    with pytest.raises(manifest.UnknownName) as error:
        COURSE.find_module("autograt")
    assert error.value.suggestions[0] == "autograd"
    assert "Did you mean autograd" in str(error.value)
    with pytest.raises(manifest.UnknownName):
        COURSE.find_checkpoint("16")
    with pytest.raises(manifest.UnknownName):
        COURSE.find_module("")


def test_every_target_has_one_owner_and_a_path():
    targets = [t for m in COURSE.modules for t in m.exports]
    assert len(targets) == len(set(targets))
    assert manifest.export_path("core.losses").as_posix() == "tinytorch/core/losses.py"
