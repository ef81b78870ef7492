"""Recipes hold what each course report says, run on generated trees, and the course metrics reproduce the reports'
formulas on hand-computed cases."""

from __future__ import annotations

import json

import pytest
import torch

from encdec.cli import main
from encdec.course_metrics import CourseMetrics, course_dice, course_pixel_accuracy
from encdec.training import recipes

try:
    from tests.fixtures import trees
except ImportError:  # pragma: no cover - tests/ on sys.path instead of a package
    from fixtures import trees

# Written from the reports (shared/seeds): (recipe, field, value, where the report says it).
REPORTED = [
    ("voc_unet_course", "optimizer", "adam", "seed 000: torch.optim.Adam(model.parameters(), lr=learning_rate)"),
    ("voc_unet_course", "lr", 0.005, "seed 000: learning_rate = 0.005"),
    ("voc_unet_course", "batch_size", 16, "seed 000: batch_size = 16"),
    ("voc_unet_course", "epochs", 3, "seed 000: epochs = 3"),
    ("voc_unet_course", "scheduler", "step", "seed 000: StepLR(optimizer, step_size=1, gamma=0.1)"),
    ("voc_unet_course", "scheduler_args", {"step_size": 1, "gamma": 0.1}, "seed 000: StepLR arguments"),
    ("voc_unet_course", "scheduler_interval", "step", "seed 000: scheduler.step() inside the batch loop"),
    ("voc_unet_course", "ignore_index", 21, "seed 000: CrossEntropyLoss(ignore_index=21)"),
    ("voc_unet_course", "num_classes", 22, "seed 000: 21 classes + the boundary as class 21"),
    ("voc_unet_course", "size", 256, "seed 000: resize_size = 256"),
    ("voc_unet_course", "augment", False, "seed 000: Resize + ToTensor + Normalize only"),
    ("voc_resnet50_unet_course", "model", "resnet50_unet", "seed 000/004: UNetWithResnet50Encoder"),
    ("pet_unet_course", "lr", 1.2e-4, "seed 003: --learning_rate default 0.00012"),
    ("pet_unet_course", "batch_size", 16, "seed 003: --batch_size default 16"),
    ("pet_unet_course", "epochs", 10, "seed 003: --epochs default 10"),
    ("pet_unet_course", "optimizer", "adam", "seed 003: optim.Adam(model.parameters(), lr=args.learning_rate)"),
    ("pet_unet_course", "loss", "ce", "seed 003: nn.CrossEntropyLoss()"),
    ("pet_unet_course", "monitor", "val_dice", "seed 003: best model by validation Dice"),
    ("pet_resnet34_unet_course", "model", "resnet34_unet", "seed 003: ResNet34_UNet"),
    ("cifar_vgg16_course", "lr", 0.001, "seed 002: learning_rate = 0.001"),
    ("cifar_vgg16_course", "batch_size", 100, "seed 002: batch_size=100"),
    ("cifar_vgg16_course", "epochs", 1, "seed 002: num_epochs = 1"),
    ("cifar_vgg16_course", "scheduler_args", {"step_size": 1, "gamma": 1 / 3}, "seed 002: the rate divided by 3 "
                                                                                 "every epoch"),
    ("cifar_resnet50_course", "model", "resnet50_cifar", "seed 002: ResNet50_layer4"),
    ("dogs_cnn_course", "epochs", 20, "seed 001: 20 epochs"),
]


@pytest.mark.parametrize("name, field, value, source", REPORTED, ids=[f"{r[0]}.{r[1]}" for r in REPORTED])
def test_recipe_fields_equal_the_reports(name, field, value, source):
    assert getattr(recipes.get(name), field) == value, source


def test_course_recipes_say_their_defects_and_improved_ones_fix_them():
    assert any("5e-7" in d for d in recipes.get("voc_unet_course").defects)
    assert any("total pixel count" in d for d in recipes.get("pet_unet_course").defects)
    assert recipes.get("voc_unet_improved").scheduler_interval == "epoch" and not recipes.get("pet_improved").defects
    with pytest.raises(ValueError, match="Did you mean 'pet_unet_course'"):
        recipes.get("pet_unet_cours")


def test_course_pixel_accuracy_averages_per_image_then_per_batch():
    # batch 1: two images, accuracies 1/2 and 1 -> 0.75; batch 2: one image, accuracy 0 -> 0.0
    m = CourseMetrics(22, ignore_index=21)
    m.update(torch.tensor([[[0, 1]], [[3, 21]]]), torch.tensor([[[0, 21]], [[3, 21]]]))  # the boundary counts
    m.update(torch.tensor([[[5, 5]]]), torch.tensor([[[4, 4]]]))
    scores = m.compute()
    assert scores["course_pixel_accuracy"] == pytest.approx((0.75 + 0.0) / 2)  # not the pixel mean 3/6
    assert scores["pixel_accuracy"] == pytest.approx(2 / 4)  # the standard one leaves the two boundary pixels out
    assert course_pixel_accuracy(torch.tensor([[[1, 1, 1, 0]]]), torch.tensor([[[1, 1, 0, 0]]])) == 0.75


def test_course_dice_divides_by_all_pixels():
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[0, :2, :] = 1  # 8 foreground pixels of 16
    target[1, 0, 0] = 1
    pred = target.clone()
    assert course_dice(pred[:1], target[:1]) == pytest.approx(8 / 16)
    m = CourseMetrics(2)
    m.update(pred, target)
    scores = m.compute()
    assert scores["course_dice"] == pytest.approx((8 / 16 + 1 / 16) / 2)
    assert scores["dice"] == pytest.approx(1.0)  # the standard Dice of a perfect prediction


def test_step_lr_per_batch_is_reproduced_faithfully(tmp_path, capsys):
    voc = trees.write_voc_tree(tmp_path / "voc", splits={"train": [f"2007_{i:06d}" for i in range(4)],
                                                         "val": ["2009_000001"]})
    code = main(["train", "--recipe", "voc_unet_course", "--data", f"voc:{voc}", "--arg", "widths=[4,8,16,32,64]",
                 "--size", "32", "--batch-size", "2", "--epochs", "2", "--device", "cpu", "--workers", "0",
                 "--quiet", "--no-plots", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "reproduces a defect of seed 000/004" in err
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    lrs = [epoch["lr"] for epoch in history["epochs"]]
    assert lrs == pytest.approx([0.005, 0.005 * 0.1**2])  # two batches per epoch, one decay after each
    assert history["monitor"] == "val_loss"


@pytest.mark.slow
@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_runs_two_epochs_on_a_generated_tree(name, tmp_path, capsys):
    recipe = recipes.get(name)
    if recipe.data == "voc":
        path = trees.write_voc_tree(tmp_path / "voc", splits={"train": [f"2007_{i:06d}" for i in range(4)],
                                                              "val": ["2009_000001", "2009_000002"]})
    elif recipe.data == "pet":
        path = trees.write_pet_tree(tmp_path / "pet")
    elif recipe.data == "cifar10":
        path = tmp_path / "cifar"
        trees.write_cifar_batches(path, per_batch=20)
    else:
        path = trees.write_dog_tree(tmp_path / "dogs")
    size = {"voc": 64, "pet": 64, "cifar10": 32, "dogs": 32}[recipe.data]
    code = main(["train", "--recipe", name, "--data", f"{recipe.data}:{path}", "--epochs", "2", "--size", str(size),
                 "--batch-size", "2", "--limit", "4", "--device", "cpu", "--precision", "fp32", "--workers", "0",
                 "--quiet", "--no-plots", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 0, err
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["epochs"]) == 2 and history["monitor"] == recipe.monitor
