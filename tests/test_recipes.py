"""Recipes hold what each course report says, run on generated trees, and the course metrics reproduce the reports'
formulas on hand-computed cases."""

from __future__ import annotations

import json

import pytest
import torch

from encdec.cli import main
from encdec.course_metrics import CourseMetrics, course_dice, course_pixel_accuracy
from encdec.datasets import from_spec
from encdec.training import recipes

try:
    from tests.fixtures import trees
except ImportError:  # pragma: no cover - tests/ on sys.path instead of a package
    from fixtures import trees

# Written from the reports (shared/seeds): per report, field -> (value, where the report says it). A course
# recipe's field is either here or listed in its ``not_in_report``.
VOC_U_NET = {  # the VOC U-Net report (000): main_skeleton.py
    "data": ("voc", "VOC2012 data directory"),
    "optimizer": ("adam", "torch.optim.Adam(model.parameters(), lr=learning_rate)"),
    "lr": (0.005, "learning_rate = 0.005"),
    "weight_decay": (0.0, "Adam without weight_decay"),
    "batch_size": (16, "batch_size = 16"),
    "epochs": (3, "epochs = 3"),
    "scheduler": ("step", "StepLR(optimizer, step_size=1, gamma=0.1)"),
    "scheduler_args": ({"step_size": 1, "gamma": 0.1}, "StepLR arguments"),
    "scheduler_interval": ("step", "scheduler.step() inside the batch loop"),
    "loss": ("ce", "nn.CrossEntropyLoss(ignore_index=21)"),
    "ignore_index": (21, "CrossEntropyLoss(ignore_index=21)"),
    "num_classes": (22, "UNetWithResnet50Encoder(n_classes=22): 21 classes + the boundary as class 21"),
    "size": (256, "resize_size = 256"),
    "augment": (False, "Resize + ToTensor + Normalize only"),
    "eval_split": ("val", "Loader(data_dir, flag = 'val', ...)"),
    "precision": ("fp32", "no autocast anywhere in the listing"),
    "weights": (None, "both logged runs start near ln(22): U-Net accuracy 0.065 after epoch 1, no checkpoint loaded"),
    "encoder_weights": (None, "the torchvision resnet50 line is commented out"),
}
VOC_FINETUNE = {**{k: VOC_U_NET[k] for k in ("data", "optimizer", "weight_decay", "loss", "ignore_index",
                                             "num_classes", "augment", "eval_split", "precision",
                                             "encoder_weights")},
                "epochs": (1, "Model was trained 1 epoch, because we use the pre-trained model checkpoint")}
PET = {  # the Pet report (003)
    "data": ("pet", "Oxford-IIIT Pet"), "num_classes": (2, "binary segmentation, 2 outputs"),
    "size": (256, "images resized to 256"), "augment": (False, "its own flips only"),
    "optimizer": ("adam", "optim.Adam(model.parameters(), lr=args.learning_rate)"),
    "lr": (1.2e-4, "--learning_rate default 0.00012"), "weight_decay": (0.0, "Adam without weight_decay"),
    "batch_size": (16, "--batch_size default 16"), "epochs": (10, "--epochs default 10"),
    "scheduler": ("none", "no scheduler"), "scheduler_args": ({}, "no scheduler"),
    "scheduler_interval": ("epoch", "no scheduler"), "loss": ("ce", "nn.CrossEntropyLoss()"),
    "ignore_index": (None, "nothing ignored"), "monitor": ("val_dice", "best model by validation Dice"),
    "eval_split": ("test", "scored on the test split"), "precision": ("fp32", "no autocast"),
    "weights": (None, "trained from scratch"), "encoder_weights": (None, "its own ResNet-34 encoder"),
}
CIFAR = {  # the CIFAR-10 report (002)
    "data": ("cifar10", "CIFAR-10"), "num_classes": (10, "10 classes"), "size": (32, "32x32 images"),
    "augment": (False, "RandomCrop(32, padding=4) + RandomHorizontalFlip, its own preset"),
    "optimizer": ("adam", "torch.optim.Adam"), "lr": (0.001, "learning_rate = 0.001"),
    "weight_decay": (0.0, "Adam without weight_decay"), "batch_size": (100, "batch_size=100"),
    "epochs": (1, "num_epochs = 1"), "scheduler": ("step", "the rate divided by 3 every epoch"),
    "scheduler_args": ({"step_size": 1, "gamma": 1 / 3}, "the rate divided by 3 every epoch"),
    "scheduler_interval": ("epoch", "updated once per epoch"), "loss": ("ce", "nn.CrossEntropyLoss()"),
    "ignore_index": (None, "nothing ignored"), "eval_split": ("test", "the test batch"),
    "precision": ("fp32", "trained on the CPU, no autocast"), "encoder_weights": (None, "whole-model checkpoints"),
}
DOGS = {  # the dog-images report (001)
    "data": ("dogs", "one folder per breed"), "epochs": (20, "train 1 / 20 ... 20 / 20"),
    "scheduler_args": ({}, "no scheduler shown"), "scheduler_interval": ("epoch", "no scheduler shown"),
    "ignore_index": (None, "classification"), "precision": ("fp32", "--device cpu, no autocast"),
    "weights": (None, "no whole-model checkpoint"),
}
REPORTED = {
    "voc_unet_course": {**VOC_U_NET, "model": ("unet", "Unet(in_channels=3, out_channels=22)")},
    "voc_resnet50_unet_course": {**VOC_U_NET, "model": ("resnet50_unet", "model = UNetWithResnet50Encoder()")},
    "voc_unet_finetune_course": {**VOC_FINETUNE, "model": ("unet", "i. Original UNet"),
                                 "weights": ("UNet_best_model.pth", "load the model from checkpoint")},
    "voc_resnet50_unet_finetune_course": {**VOC_FINETUNE, "model": ("resnet50_unet", "ii. UNet with ResNet Encoder"),
                                          "weights": ("UNet_resnet_course.pth", "load the model from checkpoint")},
    "pet_unet_course": {**PET, "model": ("unet_pet", "UNet")},
    "pet_resnet34_unet_course": {**PET, "model": ("resnet34_unet", "ResNet34_UNet")},
    "cifar_vgg16_course": {**CIFAR, "model": ("vgg16_cifar", "vgg16_full.py"),
                           "weights": ("vgg16_epoch250.ckpt", "fine-tuned from the epoch-250 checkpoint")},
    "cifar_resnet50_course": {**CIFAR, "model": ("resnet50_cifar", "ResNet50_layer4"),
                              "weights": ("resnet50_epoch285.ckpt", "fine-tuned from the epoch-285 checkpoint")},
    "dogs_resfcn18_course": {**DOGS, "model": ("resfcn18", "--arch resfcn18"), "size": (192, "self.resize = 192"),
                             "encoder_weights": (None, "a fully connected network")},
    "dogs_resnet18_course": {**DOGS, "model": ("resnet18_classifier", "--arch resnet18"),
                             "encoder_weights": ("resnet18-f37072fd.pth", "torchvision resnet18(pretrained=True)")},
    "dogs_cnn_course": {**{k: v for k, v in DOGS.items() if k != "epochs"},  # never run: no epochs of its own
                        "model": ("custom_cnn", "CustomCNN, defined but never run"),
                        "size": (32, "CustomCNN(num_cls=100, img_size=32)"), "encoder_weights": (None, "its own")},
}
TRAINING_FIELDS = ("model", "data", "num_classes", "size", "augment", "optimizer", "lr", "weight_decay", "batch_size",
                   "epochs", "scheduler", "scheduler_args", "scheduler_interval", "loss", "ignore_index", "monitor",
                   "eval_split", "precision", "weights", "encoder_weights")
ROWS = [(name, field, value, source) for name, fields in REPORTED.items()
        for field, (value, source) in fields.items()]


@pytest.mark.parametrize("name, field, value, source", ROWS, ids=[f"{r[0]}.{r[1]}" for r in ROWS])
def test_recipe_fields_equal_the_reports(name, field, value, source):
    assert getattr(recipes.get(name), field) == value, source


@pytest.mark.parametrize("name", sorted(REPORTED))
def test_every_course_recipe_field_is_reported_or_marked(name):
    recipe = recipes.get(name)
    assert set(recipe.not_in_report) <= set(TRAINING_FIELDS)
    assert not set(recipe.not_in_report) & set(REPORTED[name]), "a field the report states is marked as not stated"
    unaccounted = [f for f in TRAINING_FIELDS if f not in REPORTED[name] and f not in recipe.not_in_report]
    assert not unaccounted, f"{name}: neither checked against the report nor marked: {unaccounted}"


def test_course_recipes_are_exactly_the_reports_runs():
    course = {n for n in recipes.names() if recipes.get(n).report != "encdec"}
    assert course == set(REPORTED)
    never_run = {n for n in course if not recipes.get(n).ran_in_report}
    assert never_run == {"dogs_cnn_course"}  # defined in the dog report, never run; its runs are resfcn18, resnet18
    assert all("seed" not in recipes.get(n).report for n in course)


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
    assert "reproduces a defect of the VOC U-Net report" in err
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    lrs = [epoch["lr"] for epoch in history["epochs"]]
    assert lrs == pytest.approx([0.005, 0.005 * 0.1**2])  # two batches per epoch, one decay after each
    assert history["monitor"] == "val_loss"


def _voc_run(tmp_path, capsys, *flags):
    voc = trees.write_voc_tree(tmp_path / "voc", splits={"train": [f"2007_{i:06d}" for i in range(3)],
                                                         "val": ["2009_000001"]})
    out = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    code = main(["train", "--data", f"voc:{voc}", "--arg", "widths=[4,8,16,32,64]", "--size", "32", "--batch-size",
                 "2", "--epochs", "1", "--device", "cpu", "--workers", "0", "--no-plots", "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def test_course_recipes_train_in_fp32_unless_told_and_say_where_the_report_started(tmp_path, capsys):
    err = _voc_run(tmp_path, capsys, "--recipe", "voc_unet_finetune_course")
    assert "precision fp32" in err  # the reports trained in float32, whatever this CPU supports
    assert "fine-tuned the course checkpoint UNet_best_model.pth" in err and "--weights UNet_best_model.pth" in err
    assert "precision bf16" in _voc_run(tmp_path, capsys, "--recipe", "voc_unet_course", "--precision", "bf16")
    plain = _voc_run(tmp_path, capsys, "--model", "unet", "--num-classes", "22")
    assert "fine-tuned" not in plain
    # 3 training images in batches of 2 would leave one alone: it joins the first batch, nothing is dropped
    assert "last batch holds 3 samples" in plain


def test_augment_false_is_the_plain_preset_for_every_kind(tmp_path):
    dogs = trees.write_dog_tree(tmp_path / "dogs")
    data = from_spec(f"dogs:{dogs}", "train", size=32, augment=False)
    first = [data[0][0] for _ in range(3)]
    assert all(torch.equal(first[0], x) for x in first[1:])  # nothing random
    augmented = from_spec(f"dogs:{dogs}", "train", size=32, augment=True)
    torch.manual_seed(0)
    draws = [augmented[0][0] for _ in range(3)]
    assert not all(torch.equal(draws[0], x) for x in draws[1:])


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
